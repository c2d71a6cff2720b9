"""create_app builds the harvester's app from the settings it is given: the sensor
topics, the two tables with their changelogs, the doubles' codec; two calls, two apps."""

from __future__ import annotations

from pathlib import Path

from faust.serializers import codecs

from moisson.settings import Settings
from processors.core.fold import Event, fold_all
from processors.engine.app import (
    DOUBLE_CODEC,
    DoubleCodec,
    ProcessorApp,
    create_app,
    register_codec,
)
from producers.city import generate_events


def settings_for(tmp_path: Path) -> Settings:
    return Settings().replace(
        processor={"data_dir": tmp_path / "faust", "app_id": "factory-test"},
        topics={"prefix": "t1."},
        kafka={"partitions": 3},
    )


def test_the_app_has_its_sensor_topics_and_tables(tmp_path: Path) -> None:
    s = settings_for(tmp_path)
    app = create_app(s)
    assert isinstance(app, ProcessorApp)
    assert app.conf.id == "factory-test"
    assert app.conf.topic_partitions == 3
    assert set(app.sensor_topics.topics) == set(s.topics.sensors)
    assert all(t.startswith("t1.sensors.") for t in app.sensor_topics.topics)
    assert app.unfiltered_topics == frozenset(s.topics.sensors)
    assert app.tracked == (app.doubles, app.positions)
    assert {t.name for t in app.tables.values()} == {"doubles", "positions"}
    # The doubles table's changelog *is* the compacted doubles topic, in Avro.
    assert app.doubles.changelog_topic.get_topic_name() == "t1.doubles"
    assert app.doubles.value_serializer == DOUBLE_CODEC
    assert app.doubles.changelog_topic.value_serializer == DOUBLE_CODEC
    assert app.doubles.key_serializer == "raw"
    assert app.positions.changelog_topic.get_topic_name() == "factory-test-positions-changelog"
    assert app.positions.value_serializer == "json"
    for table in app.tracked:
        assert table.partitions == 3
        assert table.changelog_topic.partitions == 3
    assert (tmp_path / "faust" / "factory-test").is_dir()  # faust expects it to exist


def test_the_doubles_codec_is_registered_and_decodes_the_changelog(tmp_path: Path) -> None:
    codecs.codecs.pop(DOUBLE_CODEC, None)  # as in a fresh worker process
    create_app(settings_for(tmp_path))
    codec = codecs.codecs[DOUBLE_CODEC]
    assert isinstance(codec, DoubleCodec)

    events = list(generate_events(3, 2, 10))
    double = next(iter(fold_all(Event(e.kind, e.record) for e in events).values()))
    # What a recovering worker does with a changelog record: faust's codec by name.
    assert codecs.loads(DOUBLE_CODEC, codecs.dumps(DOUBLE_CODEC, double)) == double
    register_codec()  # idempotent
    assert codecs.codecs[DOUBLE_CODEC] is codec


def test_each_call_builds_its_own_app(tmp_path: Path) -> None:
    one, two = create_app(settings_for(tmp_path)), create_app(settings_for(tmp_path))
    assert one is not two and one.doubles is not two.doubles
