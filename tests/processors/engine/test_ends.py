"""Recovery's changelog ends, confirmed by a fetch: on Tansu (whose ListOffsets is one
batch behind, docs/tansu-high-watermark.md) the true end; on Apache Kafka the same."""

from __future__ import annotations

import pytest
from faust.types import TP

from moisson.settings import Settings
from processors.engine.ends import fetched_ends
from producers.publisher import ensure_topics
from tests.factories import sanction
from tests.moisson.ops.test_verify_tansu import reported_end, send_batches

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("broker", ["tansu_settings", "settings"])
def test_the_fetched_end_is_the_logs_end_on_both_brokers(
    broker: str, request: pytest.FixtureRequest
) -> None:
    s: Settings = request.getfixturevalue(broker)
    ensure_topics(s)
    send_batches(s, 0, [[sanction("c1", version=v) for v in (1, 2, 3)]])
    send_batches(s, 1, [[sanction("c2", version=1)]])
    p0, p1, p2 = (TP(s.topics.sanctions, p) for p in (0, 1, 2))
    reported = {p0: reported_end(s, 0), p1: reported_end(s, 1), p2: reported_end(s, 2)}
    assert reported[p0] == (1 if broker == "tansu_settings" else 3)
    ends = fetched_ends(s.kafka.client_kwargs(), reported)
    assert ends == {p0: 3, p1: 1, p2: 0}, "an empty partition is not fetched"
