"""Input that cannot be decoded goes to the dead-letter topic, whole, with the reason.

A :class:`DeadLetteringTopic` is a Faust topic whose decode errors do not crash the agent that
reads it: the original key and value bytes, the source topic, partition and offset and the
reason are sent to ``dead-letters``, a warning names where the message was, the metric
``fraud_dead_letters_total`` counts it, and the stream goes on with the next message.

Several agents may read the same topic: Faust then reports one decode error per agent for the
same message, but the message is dead-lettered once. A message without a value (a tombstone) is
rejected as ``empty``.

A dead letter counts as an output like any other: :meth:`DeadLetters.send` returns once the broker
has confirmed it, and a dead letter it refuses stops the worker (see :mod:`app.outputs`). Faust
acknowledges a message that does not decode before it reports the error to the topic, so a
:class:`DeadLetteringTopic` sends (and confirms) the dead letter in its decoding step, before
raising the error Faust then reports: a message is never acknowledged before its dead letter is
in Kafka.
"""
from __future__ import annotations

import collections
import logging
import time

import faust
from faust.exceptions import DecodeError as FaustDecodeError
from faust.types import Message

from app import metrics, outputs
from app.records import DeadLetter
from app.serialization.errors import DecodeError

log = logging.getLogger(__name__)


def dead_letter_for(exc: BaseException, message: Message) -> DeadLetter:
    """The dead letter of ``message``, rejected with ``exc``."""
    return DeadLetter(
        reason="empty" if message.value is None else DecodeError.reason_of(exc),
        error=str(exc)[:2000],
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        processing_time=time.time(),
        timestamp=message.timestamp,
        key=message.key,
        value=message.value,
    )


class _Seen:
    """The positions (topic, partition, offset) of the last ``size`` dead-lettered messages."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._positions: collections.OrderedDict = collections.OrderedDict()

    def add(self, position: tuple) -> bool:
        """Remember ``position``; False if it was already there.

        >>> seen = _Seen(size=2)
        >>> seen.add(("t", 0, 1)), seen.add(("t", 0, 1)), seen.add(("t", 0, 2)), seen.add(("t", 0, 3))
        (True, False, True, True)
        >>> seen.add(("t", 0, 1))  # forgotten: only the last 2 are kept
        True
        """
        if position in self._positions:
            return False
        self._positions[position] = None
        if len(self._positions) > self.size:
            self._positions.popitem(last=False)
        return True


class DeadLetters:
    """Sends rejected messages to the dead-letter ``topic``, once each however many agents report
    the same message, with a warning that names where it was and the ``fraud_dead_letters_total``
    metric."""

    def __init__(self, topic) -> None:
        self.topic = topic
        self._seen = _Seen()

    async def send(self, exc: Exception, message: Message) -> None:
        """Dead-letter ``message``, rejected with ``exc`` (decoding it, or processing it: see
        :func:`processing_failed`); returns once the broker has confirmed it."""
        if not self._seen.add((message.topic, message.partition, message.offset)):
            return  # the same message, reported again for another agent reading the topic
        letter = dead_letter_for(exc, message)
        log.warning(
            "skipped a message of topic %s partition %s offset %s: %s",
            message.topic, message.partition, message.offset, letter.error,
        )
        await outputs.confirmed([await self.topic.send(key=message.key, value=letter)], self.topic.get_topic_name())
        metrics.DEAD_LETTERS.labels(topic=message.topic, reason=letter.reason).inc()
        metrics.EVENTS_OUT.labels(topic=self.topic.get_topic_name()).inc()


class DeadLetteringTopic(faust.Topic):
    """A topic that sends what it cannot decode to its ``dead_letters`` (a :class:`DeadLetters`)
    instead of raising; the copies Faust makes of it (to iterate it) carry the same one."""

    def __init__(self, *args, dead_letters: DeadLetters | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.dead_letters = dead_letters

    def _clone_args(self):
        return {**super()._clone_args(), "dead_letters": self.dead_letters}

    def _compile_decode(self) -> None:
        super()._compile_decode()
        decode = self.decode

        async def decode_or_dead_letter(message: Message, *, propagate: bool = False):
            try:
                return await decode(message, propagate=True)
            except FaustDecodeError as exc:  # dead-lettered before Faust acknowledges the message
                await self._dead_letters().send(exc, message)
                if propagate:
                    raise
                return None

        self.decode = decode_or_dead_letter

    def _dead_letters(self) -> DeadLetters:
        if self.dead_letters is None:
            raise RuntimeError(f"topic {self.get_topic_name()} has no dead-letter topic set")
        return self.dead_letters

    async def on_key_decode_error(self, exc: Exception, message: Message) -> None:
        await self._dead_letters().send(exc, message)  # sent already by decoding, unless it was forgotten

    async def on_value_decode_error(self, exc: Exception, message: Message) -> None:
        await self._dead_letters().send(exc, message)


def processing_failed(exc: Exception) -> DecodeError:
    """The error to dead-letter a decoded message with when an agent fails on it."""
    error = DecodeError("processing-failed", f"{type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error
