"""What moved out of the CLI: the no-sanction source and the health probes."""

from __future__ import annotations

import pytest

from moisson.settings import Settings
from moisson.stack import health
from producers.publisher import Nobody


def test_nobody_blacklists_no_one():
    nobody = Nobody()
    assert not nobody.is_blacklisted("c0000001")
    nobody.observe(object())


def test_wanted_topics_are_the_sensor_doubles_sanctions_and_dlq_topics():
    s = Settings.model_construct()
    wanted = health.wanted_topics(s)
    assert wanted == [*s.topics.sensors, s.topics.doubles, s.topics.sanctions, s.topics.dlq]


def test_http_probe_fails_on_a_closed_port():
    with pytest.raises(OSError):
        health.http_ok(Settings.model_construct(), "http://127.0.0.1:1/", 0.5)
