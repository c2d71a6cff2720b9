"""The sensors' Kafka clients close within the commands' deadline (producers imports
nothing of moisson, so it keeps the value itself)."""

from __future__ import annotations

from moisson import stopping
from producers import publisher


def test_the_sensors_close_their_kafka_clients_as_fast_as_the_commands():
    assert publisher.CLOSE_S == stopping.CLOSE_S
