"""Topic specs: which topics are compacted, and the dead-letter topic's chosen retention."""

from __future__ import annotations

from schemas.topics import DAY_MS, MIB, Topics, compacted_configs, dead_letter_configs


def test_the_dead_letter_topic_keeps_a_month_and_256_mib_per_partition_by_default():
    specs = {spec.name: spec.configs for spec in Topics("p.").specs()}
    assert specs["p.sensors.dlq"] == {
        "cleanup.policy": "delete",
        "retention.ms": str(30 * DAY_MS),
        "retention.bytes": str(256 * MIB),
        "segment.ms": str(30 * DAY_MS // 4),
        "segment.bytes": str(64 * MIB),
    }
    # The other topics: compaction that runs within the hour, or the broker's defaults.
    for name in ("p.doubles", "p.sanctions", "p.blacklist"):
        assert specs[name] == {
            "cleanup.policy": "compact",
            "segment.ms": str(3600 * 1000),
            "segment.bytes": str(64 * MIB),
            "min.cleanable.dirty.ratio": "0.25",
            "delete.retention.ms": str(DAY_MS),
        }, name
    assert specs["p.sensors.book"] == {} and specs["p.ledger"] == {}


def test_compaction_is_chosen_per_pipeline():
    topics = Topics("", compact_segment_ms=5000, compact_segment_bytes=2 * MIB)
    doubles = next(s for s in topics.specs() if s.name == topics.doubles)
    assert doubles.compacted
    assert doubles.configs == compacted_configs(5000, 2 * MIB) == topics.compacted
    assert (doubles.configs["segment.ms"], doubles.configs["segment.bytes"]) == (
        "5000",
        str(2 * MIB),
    )


def test_the_retention_is_chosen_per_pipeline():
    topics = Topics("", dead_letter_retention_ms=2 * DAY_MS, dead_letter_retention_bytes=8 * MIB)
    dlq = next(s for s in topics.specs() if s.name == topics.dlq)
    assert dlq.configs == topics.dead_letters == dead_letter_configs(2 * DAY_MS, 8 * MIB)
    assert dlq.configs["segment.bytes"] == str(2 * MIB)  # a quarter: deleted within 25%


def test_a_segment_is_never_below_kafkas_minimum():
    assert dead_letter_configs(3, 4 * MIB - 1)["segment.bytes"] == str(MIB)
    assert dead_letter_configs(3, 4 * MIB)["segment.ms"] == "1"
