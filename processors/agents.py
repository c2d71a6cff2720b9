"""faust agents: the harvester that folds sensor events into doubles and sanctions."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from processors.app import (
    app,
    dlq_topic,
    doubles,
    doubles_topic,
    sanctions_topic,
    sensor_topics,
    settings,
)
from processors.harvest import Rejection, apply_message, sanction_for
from processors.privacy import Privacy
from processors.scoring import load_rules
from schemas.codec import DOUBLE, SANCTION, encode

log = logging.getLogger(__name__)

rules = load_rules(settings.processor.rules_path)
KIND_BY_TOPIC = {settings.topics.sensor(k): k for k in ("metro", "payment", "book", "camera")}
rejections: Counter[str] = Counter()
secret = settings.processor.pseudonymise_key
privacy = Privacy.of(
    settings.processor.harvest_kinds, secret.get_secret_value() if secret else None
)


def dead_letter_headers(
    reason: str, detail: str, topic: str, partition: int, offset: int
) -> list[tuple[str, bytes]]:
    """Where a dead letter came from and why it was refused."""
    return [
        ("moisson.reason", reason.encode()),
        ("moisson.detail", detail[:500].encode("utf-8", "replace")),
        ("moisson.topic", topic.encode()),
        ("moisson.partition", str(partition).encode()),
        ("moisson.offset", str(offset).encode()),
    ]


@app.agent(sensor_topics)
async def harvest(stream: Any) -> None:
    """Fold every sensor event into its citizen's double; publish doubles and sanctions."""
    async for event in stream.events():
        msg = event.message
        key = msg.key if isinstance(msg.key, bytes | None) else str(msg.key).encode()
        cid = key.decode("utf-8", "replace") if key is not None else None
        current = doubles.get(privacy.pseudonym(cid)) if cid is not None else None
        outcome = apply_message(
            current,
            expected_kind=KIND_BY_TOPIC.get(msg.topic),
            topic=msg.topic,
            key=key,
            value=msg.value,
            rules=rules,
            privacy=privacy,
        )
        if outcome.double is None:
            assert outcome.rejected is not None
            rejections[outcome.rejected.value] += 1
            if outcome.rejected is Rejection.DUPLICATE and current is not None:
                # Publish the double again: a crash may have persisted the table's
                # changelog but not this double; the sink's version guard drops repeats.
                await doubles_topic.send(
                    key=current["citizen_id"].encode(), value=encode(DOUBLE, current)
                )
            if outcome.rejected not in (Rejection.DUPLICATE, Rejection.NOT_HARVESTED):
                log.warning(
                    "rejected %s[%d]@%d: %s (%s)",
                    msg.topic,
                    msg.partition,
                    msg.offset,
                    outcome.rejected.value,
                    outcome.detail,
                )
                # Nothing is lost: the original bytes go to the dead-letter topic.
                await dlq_topic.send(
                    key=key,
                    value=msg.value,
                    headers=dead_letter_headers(
                        outcome.rejected.value,
                        outcome.detail,
                        msg.topic,
                        msg.partition,
                        msg.offset,
                    ),
                )
            continue
        citizen = outcome.double["citizen_id"]
        doubles[citizen] = outcome.double
        await doubles_topic.send(key=citizen.encode(), value=encode(DOUBLE, outcome.double))
        sanction = sanction_for(current, outcome.double, rules)
        if sanction is not None:
            log.info(
                "sanction: %s %s (%s)",
                citizen,
                "blacklisted" if sanction["active"] else "lifted",
                sanction["reason"],
            )
            await sanctions_topic.send(key=citizen.encode(), value=encode(SANCTION, sanction))
