"""Signed state: an HMAC-SHA256 that proves a stored blob was written with this service's key.

Checkpoints are unpickled when a partition's state is restored, so whoever could write a
checkpoint to a changelog topic could make the worker run code. A :class:`Signer` appends to each
blob it signs a trailer: ``FSG1``, the key's id (8 bytes, see :attr:`Signer.key_id`) and the
HMAC-SHA256 of the ``context`` (the table key the blob is stored under, so that a blob cannot be
moved to another partition's key) and the blob. :meth:`Signer.verify` gives the blob back only if
the trailer is there and the MAC matches; it raises :class:`SignatureError` otherwise, without
looking at the blob. The trailer comes last so that the checkpoint envelope's positions can still
be read without the key (see :func:`app.state.checkpointed.open_envelope`).

>>> signer = Signer("a key of at least sixteen bytes")
>>> signed = signer.sign(b"state", context=b"0")
>>> signer.verify(signed, context=b"0")
b'state'
>>> signer.verify(b"state", context=b"0")
Traceback (most recent call last):
...
app.state.signing.SignatureError: unsigned: no signature trailer
>>> signer.verify(signed, context=b"1")  # the blob of partition 0 under partition 1's key
Traceback (most recent call last):
...
app.state.signing.SignatureError: bad_signature: the signature does not match (altered or forged)
>>> Signer("another key, sixteen bytes or more").verify(signed, context=b"0")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
app.state.signing.SignatureError: other_key: signed with key id ..., this worker's is ...
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import struct

log = logging.getLogger(__name__)

MAGIC = b"FSG1"
_KEY_ID_BYTES = 8
_MAC_BYTES = 32
TRAILER_BYTES = len(MAGIC) + _KEY_ID_BYTES + _MAC_BYTES
MIN_KEY_BYTES = 16

# The key used when FRAUD_STATE_KEY is not set: anyone can read it here, so it only stops blobs
# that were never signed (see :func:`state_signer`).
DEVELOPMENT_KEY = "fraudstream-development-state-key (public: set FRAUD_STATE_KEY)"


class SignatureError(ValueError):
    """A blob without a valid signature of this key; ``reason`` is ``unsigned`` (no trailer),
    ``other_key`` (signed with another key) or ``bad_signature`` (altered or forged)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


class Signer:
    """Signs blobs with, and verifies them against, one secret ``key`` (str or bytes, at least
    16 bytes)."""

    def __init__(self, key: str | bytes) -> None:
        key = key.encode() if isinstance(key, str) else bytes(key)
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"a state key needs at least {MIN_KEY_BYTES} bytes, got {len(key)}")
        self._key = key
        self.key_id = hmac.new(key, b"fraudstream state key id", hashlib.sha256).digest()[:_KEY_ID_BYTES]

    def _mac(self, context: bytes, blob: bytes, key_id: bytes) -> bytes:
        mac = hmac.new(self._key, struct.pack(">I", len(context)), hashlib.sha256)
        mac.update(context)
        mac.update(blob)
        mac.update(MAGIC + key_id)
        return mac.digest()

    def sign(self, blob: bytes, context: bytes = b"") -> bytes:
        """``blob`` followed by its signature trailer."""
        return blob + MAGIC + self.key_id + self._mac(context, blob, self.key_id)

    def verify(self, signed: bytes, context: bytes = b"") -> bytes:
        """The blob of ``signed`` if this key signed it with ``context``; :class:`SignatureError` if not."""
        if len(signed) < TRAILER_BYTES or signed[-TRAILER_BYTES:-TRAILER_BYTES + len(MAGIC)] != MAGIC:
            raise SignatureError("unsigned", "no signature trailer")
        blob, trailer = signed[:-TRAILER_BYTES], signed[-TRAILER_BYTES + len(MAGIC):]
        key_id, mac = trailer[:_KEY_ID_BYTES], trailer[_KEY_ID_BYTES:]
        if key_id != self.key_id:
            raise SignatureError("other_key", f"signed with key id {key_id.hex()}, this worker's is {self.key_id.hex()}")
        if not hmac.compare_digest(mac, self._mac(context, blob, key_id)):
            raise SignatureError("bad_signature", "the signature does not match (altered or forged)")
        return blob

    def __repr__(self) -> str:
        return f"Signer(key id {self.key_id.hex()})"


def state_signer(key: str) -> Signer:
    """The signer of the service's state for the configured ``key`` (``FRAUD_STATE_KEY``); when it
    is empty, the public :data:`DEVELOPMENT_KEY`, with a warning: checkpoints are then refused
    only if unsigned, not if forged by someone who read this file.

    >>> state_signer("x" * 32).key_id == Signer("x" * 32).key_id
    True
    """
    if key:
        signer = Signer(key)
        log.info("state checkpoints are signed and verified with the key of id %s", signer.key_id.hex())
        return signer
    signer = Signer(DEVELOPMENT_KEY)
    log.warning("FRAUD_STATE_KEY is not set: state checkpoints are signed with the public development key "
                "(id %s), which does not stop anyone who can write to the changelog topics from making this "
                "worker run code. Set FRAUD_STATE_KEY to a secret of at least %d bytes, the same for every "
                "worker of the app (e.g. python -c 'import secrets; print(secrets.token_hex(32))').",
                signer.key_id.hex(), MIN_KEY_BYTES)
    return signer
