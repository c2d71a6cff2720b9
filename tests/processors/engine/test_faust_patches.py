"""Pins for the faust and mode internals that the worker's clean stop relies on
(processors/engine/faust_patches.py): if an upgrade moves them, these fail first."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from processors.engine.faust_patches import bound_consumer_stop, bound_producer_stop

ROOT = Path(__file__).parents[3]


def consumer_whose_stop(stop: object) -> SimpleNamespace:
    return SimpleNamespace(_thread=SimpleNamespace(on_thread_stop=stop))


def test_faust_and_mode_still_have_what_is_used() -> None:
    import mode
    from faust.transport.consumer import ThreadDelegateConsumer
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    assert callable(mode.Worker._schedule_shutdown)
    assert asyncio.iscoroutinefunction(AIOKafkaConsumerThread.on_thread_stop)
    assert "_thread" in ThreadDelegateConsumer.__annotations__


async def test_a_consumer_stop_cancelled_from_inside_lets_the_worker_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """What aiokafka's Fetcher.close does when the broker is gone: it re-raises the
    CancelledError of a fetch that was backing off."""

    async def cancelled_inside() -> None:
        raise asyncio.CancelledError

    consumer = consumer_whose_stop(cancelled_inside)
    bound_consumer_stop(consumer, 1.0)
    with caplog.at_level(logging.WARNING):
        await consumer._thread.on_thread_stop()  # returns: the thread's shutdown goes on
    assert "did not end cleanly" in caplog.text


async def test_a_consumer_stop_that_hangs_is_given_up_after_the_timeout() -> None:
    async def hangs() -> None:
        await asyncio.sleep(3600)

    consumer = consumer_whose_stop(hangs)
    bound_consumer_stop(consumer, 0.2)
    started = time.monotonic()
    await consumer._thread.on_thread_stop()
    assert time.monotonic() - started < 2


async def test_the_producer_s_stop_steps_share_one_budget() -> None:
    """Flush, buffer flush and stop each wait on a broker that is gone: the three
    together take the budget, not three times it."""

    async def hangs() -> None:
        await asyncio.sleep(3600)

    producer = SimpleNamespace(flush=hangs, on_stop=hangs, buffer=SimpleNamespace(flush=hangs))
    bound_producer_stop(producer, 0.5)
    started = time.monotonic()
    await producer.flush()
    await producer.buffer.flush()
    await producer.on_stop()
    assert 0.4 < time.monotonic() - started < 1.0


async def test_a_producer_that_delivers_in_time_is_waited_for() -> None:
    done = []

    async def delivers() -> None:
        await asyncio.sleep(0.1)
        done.append(1)

    producer = SimpleNamespace(
        flush=delivers, on_stop=delivers, buffer=SimpleNamespace(flush=delivers)
    )
    bound_producer_stop(producer, 5.0)
    await producer.flush()
    await producer.buffer.flush()
    await producer.on_stop()
    assert done == [1, 1, 1]


async def test_a_stop_cancelled_from_outside_is_still_cancelled() -> None:
    async def hangs() -> None:
        await asyncio.sleep(3600)

    consumer = consumer_whose_stop(hangs)
    bound_consumer_stop(consumer, 60)
    task = asyncio.ensure_future(consumer._thread.on_thread_stop())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_bounding_twice_wraps_once() -> None:
    calls = []

    async def stop() -> None:
        calls.append(1)

    consumer = consumer_whose_stop(stop)
    bound_consumer_stop(consumer, 1.0)
    bound_consumer_stop(consumer, 1.0)
    await consumer._thread.on_thread_stop()
    assert calls == [1]


def test_shutdown_on_signal_stops_a_mode_worker_as_its_own_handler_does() -> None:
    """mode's private ``_schedule_shutdown``: the services stop, then the loop, exit 0."""
    code = """
        import asyncio, signal
        import mode
        from processors.engine.faust_patches import shutdown_on_signal

        class Svc(mode.Service):
            async def on_stop(self):
                print("service stopped", flush=True)

        worker = mode.Worker(Svc(), loglevel="warning", daemon=True)
        worker.loop.call_later(0.5, shutdown_on_signal, worker, signal.SIGHUP)
        worker.execute_from_commandline()
    """
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    assert "service stopped" in done.stdout + done.stderr  # mode logs what is printed


async def test_the_worker_fetches_with_the_configured_wait(tmp_path: Path) -> None:
    """set_fetch_wait reaches the aiokafka consumer faust creates (faust fixes 1500 ms)."""
    from moisson.settings import Settings
    from processors.engine.app import create_app

    settings = Settings().replace(processor={"data_dir": tmp_path, "fetch_max_wait_ms": 123})
    loop = asyncio.get_running_loop()
    made = create_app(settings).consumer._thread._create_consumer(loop=loop)
    assert made._fetch_max_wait_ms == 123
    settings = settings.replace(processor={"fetch_max_wait_ms": 1500})
    plain = create_app(settings).consumer._thread._create_consumer(loop=loop)
    assert plain._fetch_max_wait_ms == 1500


def test_faust_still_has_every_private_name_the_patches_override_or_call() -> None:
    """Each private name :mod:`processors.engine.faust_patches` overrides or calls, where
    faust 0.15.3 defines it: an upgrade that moves one fails here, naming it."""
    import faust
    from faust.streams import _current_event
    from faust.tables.base import Collection
    from faust.transport.consumer import Consumer
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Producer

    assert _current_event.name == "current_event"
    for owner, name in [
        (faust.App, "_new_consumer"),
        (faust.App, "_on_partitions_revoked"),
        (Collection, "_verify_source_topic_partitions"),
        (Collection, "_new_store_by_url"),
        (Consumer, "_commit_offsets"),
        (Producer, "_ensure_producer"),
        (AIOKafkaConsumerThread, "_create_consumer"),
    ]:
        assert callable(getattr(owner, name, None)), f"{owner.__name__}.{name}"
    assert "self._read_offset" in inspect.getsource(Consumer.__init__)
    assert "self._new_consumer()" in inspect.getsource(faust.App.consumer.fget)
    revoked = inspect.getsource(faust.App._on_partitions_revoked)
    assert "self.tables.on_partitions_revoked" in revoked
