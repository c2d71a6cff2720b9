"""The processor's metrics port is bound by ``build()`` itself, before faust starts or
joins the group: a taken port fails there (on both entry points, ``moisson process``
and ``faust -A processors.worker``), and port 0 is bound and answering at once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest

from moisson.metrics import MetricsError
from moisson.settings import Settings
from processors import worker

ROOT = Path(__file__).parents[2]


@pytest.fixture
def taken() -> Iterator[int]:
    """A port something else listens on."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield held.getsockname()[1]


def settings_for(tmp_path: Path, port: int) -> Settings:
    return Settings().replace(
        processor={"data_dir": tmp_path / "faust", "app_id": "metrics-port-test"},
        metrics={"enabled": True, "host": "127.0.0.1", "processor_port": port},
    )


def test_a_taken_port_fails_the_build_before_any_app_is_made(tmp_path: Path, taken: int):
    with pytest.raises(MetricsError) as err:
        worker.build(settings_for(tmp_path, taken))
    assert f"processor metrics cannot listen on 127.0.0.1:{taken}" in str(err.value)
    assert err.value.fix.startswith("set METRICS_PROCESSOR_PORT to a free port")
    assert not (tmp_path / "faust").exists()  # create_app (which makes it) never ran


def test_port_0_is_bound_and_answering_when_build_returns(tmp_path: Path):
    servers = []
    real = worker.serve

    def serve(*args, **kwargs):
        servers.append(real(*args, **kwargs))
        return servers[-1]

    with mock.patch.object(worker, "serve", serve):
        app = worker.build(settings_for(tmp_path, 0))
    try:
        assert not app.started  # no worker ran: the port is held by the build alone
        [server] = servers
        assert server.port != 0
        with urllib.request.urlopen(server.url, timeout=10) as answer:
            assert answer.status == 200
            assert "moisson_processor_" in answer.read().decode()
    finally:
        for server in servers:
            server.close()


def test_metrics_off_binds_nothing(tmp_path: Path, taken: int):
    s = settings_for(tmp_path, taken).replace(metrics={"enabled": False})
    with mock.patch.object(worker, "serve") as serve:
        worker.build(s)
    serve.assert_not_called()


def test_faust_dash_a_with_a_taken_port_exits_with_the_error_and_the_fix(
    tmp_path: Path, taken: int
):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "PROCESSOR_DATA_DIR": str(tmp_path / "faust"),
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",  # never reached: it fails before
        "METRICS_ENABLED": "true",
        "METRICS_HOST": "127.0.0.1",
        "METRICS_PROCESSOR_PORT": str(taken),
    }
    done = subprocess.run(
        [sys.executable, "-m", "faust", "-A", "processors.worker", "worker", "--without-web"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert lines == [
        f"error: processor metrics cannot listen on 127.0.0.1:{taken} (Address already in use)",
        "fix: set METRICS_PROCESSOR_PORT to a free port (0: any free port, logged)"
        " or METRICS_ENABLED=false",
    ], done.stderr
    assert "Worker ready" not in done.stdout
