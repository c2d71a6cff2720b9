"""The sink's dead-letter topic (``<prefix>sink.dlq``): each record the sink set aside,
as its own bytes and key, with the headers of :mod:`schemas.dead_letters` (reason,
detail, and the topic, partition and offset it came from).

The runner commits a batch's offsets only after every dead letter of the batch is
acknowledged, so a record set aside is never lost; a crash in between sends it again
(at least once). A record too large for the topic with the headers added is sent
without its key and value: the headers still say where it lies.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kafka.errors import MessageSizeTooLargeError

from schemas import dead_letters as dl
from sinks.base import Refusal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeadLetter:
    """A record set aside: why, and the Kafka message it came in."""

    refusal: Refusal
    message: Any

    def headers(self, note: str = "") -> list[tuple[str, bytes]]:
        m = self.message
        detail = note + self.refusal.detail
        return dl.headers(self.refusal.reason, detail, m.topic, m.partition, m.offset)


class DeadLetterTopic:
    """Sends dead letters with a kafka-python producer and waits for them."""

    def __init__(self, producer: Any, topic: str, timeout_s: float = 30.0) -> None:
        self.producer = producer
        self.topic = topic
        self.timeout_s = timeout_s

    def send(self, letters: Sequence[DeadLetter]) -> None:
        """Send ``letters`` and wait until each is acknowledged; a
        :class:`~kafka.errors.KafkaError` means some were not (send them all again)."""
        pending = [(letter, self._send(letter)) for letter in letters]
        if pending:
            self.producer.flush(timeout=self.timeout_s)
        for letter, future in pending:
            try:
                future.get(timeout=self.timeout_s)
            except MessageSizeTooLargeError:  # the broker's limit (message.max.bytes)
                try:  # its record batch was too large; alone, it may fit
                    self._send(letter).get(timeout=self.timeout_s)
                except MessageSizeTooLargeError:
                    self._stripped(letter).get(timeout=self.timeout_s)

    def _send(self, letter: DeadLetter) -> Any:
        m = letter.message
        try:
            return self.producer.send(
                self.topic, key=m.key, value=m.value, headers=letter.headers()
            )
        except MessageSizeTooLargeError:  # the producer's limit (max_request_size)
            return self._stripped(letter)

    def _stripped(self, letter: DeadLetter) -> Any:
        m = letter.message
        size = len(m.value or b"") + len(m.key or b"")
        log.warning(
            "a dead letter from %s[%d]@%d is too large (%d bytes); sent without key and value",
            m.topic,
            m.partition,
            m.offset,
            size,
        )
        note = f"[key and value ({size:,} bytes) not copied: too large for {self.topic}] "
        return self.producer.send(self.topic, key=None, value=b"", headers=letter.headers(note))
