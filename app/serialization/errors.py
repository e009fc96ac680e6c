"""Why a message could not be decoded, as a short kind and a readable detail."""
from __future__ import annotations

REASONS = (
    "empty",  # no value at all
    "too-short",  # fewer than the 5 header bytes plus a body
    "bad-magic-byte",  # not Confluent wire format
    "unknown-schema-id",  # the registry has no schema with that id
    "registry-unavailable",  # the registry could not be asked
    "truncated",  # the body ends before the schema says it should
    "schema-mismatch",  # the writer's schema cannot be read as the expected record
    "invalid-value",  # decoded, but a value is not acceptable (NaN amount, empty id, ...)
    "processing-failed",  # decoded and valid, but an agent failed on it (the error says how)
)


class DecodeError(ValueError):
    """A message that cannot become a record. ``reason`` is one of :data:`REASONS`.

    The message text starts with the reason, so that it survives Faust's re-wrapping:

    >>> str(DecodeError("bad-magic-byte", "first byte is 0x7b, expected 0x00"))
    'bad-magic-byte: first byte is 0x7b, expected 0x00'
    """

    def __init__(self, reason: str, detail: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown decode reason {reason!r}")
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")

    @staticmethod
    def reason_of(exc: BaseException) -> str:
        """The reason of ``exc`` or of the error it wraps; ``schema-mismatch`` when unknown."""
        seen = exc
        while seen is not None:
            if isinstance(seen, DecodeError):
                return seen.reason
            seen = seen.__cause__ or seen.__context__
        text = str(exc).split(":", 1)[0].strip()
        return text if text in REASONS else "schema-mismatch"
