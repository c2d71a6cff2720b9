"""The sensor kinds, in the order the CLI, the dashboard and the ledger list them.

Each kind's Avro record is ``schemas.codec.SENSOR_SCHEMAS[kind]`` (the one table of
them) and its topic ``schemas.topics.Topics.sensor(kind)``.
"""

from __future__ import annotations

from schemas.codec import SENSOR_SCHEMAS

SENSOR_KINDS: tuple[str, ...] = tuple(SENSOR_SCHEMAS)
