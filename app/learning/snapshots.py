"""A snapshot of the central learner's model: what every scorer predicts with, and the learner's checkpoint.

In central learning (``docs/scaleout.md``) the one learner writes a :class:`Snapshot` every K
examples or T seconds to the snapshots topic. Every worker reads the newest one and swaps its
replica to it; a worker that takes the learner over restores it and reads the examples after
``examples_offset`` again. So a snapshot carries, beside the model's checkpoint bytes
(:meth:`app.learning.learner.OnlineLearner.to_checkpoint`, what the model host's ``open`` and
``put`` operations take):

* ``version``: ``<model name>-g<generation>@<examples received>`` (:func:`version_of`), the
  ``model_version`` of the scores made with it;
* ``examples_offset``: the offset of the last example of the examples topic it has taken in (-1:
  none);
* ``positions``: per source partition (``"<topic>:<partition>"``), the highest source offset of the
  examples it has taken in; an example at or below is a duplicate (:mod:`app.learning.central`);
* ``event_times``: per source partition, the newest event time of the examples it has taken in
  (how far each partition's scoring has come: the scorers' event-time alignment,
  :mod:`app.scoring.alignment`, keeps a worker from running ahead of the others' partitions);
* ``received`` (examples taken in, learned or left out by subsampling) and ``learned``;
* ``sample_rate``: the share of genuine examples the model learned; scorers correct its
  probabilities with it (:func:`app.learning.subsampling.correct`);
* ``errors``: the checkpoint of the learner's error monitor (the ADWIN window over its own
  prequential errors, :mod:`app.drift.learner_errors`) as of the same example, empty when it runs
  none; only a learner taking over uses it.

The model bytes are a pickle, and unpickling runs code, so a snapshot is signed like the state
checkpoints (:mod:`app.state.signing`, with the context :data:`CONTEXT`, so that no other signed
blob of the service passes for a snapshot) and :func:`decode` checks the signature before it reads
anything. It never unpickles: the model host does, from bytes that passed the check.

The encoding: ``FSN1``, the length of a JSON header (4 bytes), the header (every field but the
model; ``errors`` in base64, left out when empty, and ``event_times``, left out when empty, so that a
reader that does not know them reads the rest), the model bytes, then the signature trailer.

>>> from app.state.signing import Signer
>>> signer = Signer("a key of at least sixteen bytes")
>>> snapshot = Snapshot("arf+lr", version_of("arf+lr", 0, 1000), examples_offset=1041,
...                     positions={"transactions:0": 998, "labels:0": 40}, received=1000, sample_rate=0.1,
...                     model=b"<checkpoint bytes>", learned=120, event_times={"transactions:0": 1.7e9})
>>> blob = encode(snapshot, signer)
>>> decode(blob, signer) == snapshot
True
>>> snapshot.version, snapshot.generation
('arf+lr-g0@1000', 0)
>>> decode(blob[:-1] + b"x", signer)
Traceback (most recent call last):
...
app.learning.snapshots.SnapshotError: bad_signature: the signature does not match (altered or forged)
"""
from __future__ import annotations

import base64
import binascii
import json
import struct
from dataclasses import dataclass, field

from app.state.signing import SignatureError, Signer

__all__ = ["CONTEXT", "MAGIC", "Snapshot", "SnapshotError", "decode", "encode", "version_of"]

MAGIC = b"FSN1"
CONTEXT = b"fraudstream model snapshot"  # what the signature binds a snapshot to (see Signer.sign)
_LENGTH = struct.Struct(">I")


class SnapshotError(ValueError):
    """Bytes that are not a snapshot this key signed; ``reason`` is the signature's (``unsigned``,
    ``other_key``, ``bad_signature``) or ``bad_header`` / ``unreadable`` for signed bytes that are
    not a snapshot of this format."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def version_of(model_name: str, generation: int, received: int) -> str:
    """The version a snapshot gives the scores made with it.

    >>> version_of("lr", 2, 35)
    'lr-g2@35'
    """
    return f"{model_name}-g{generation}@{received}"


@dataclass(frozen=True)
class Snapshot:
    """The central learner's model and the bookkeeping that goes with it (see the module's docstring)."""

    model_name: str
    version: str
    examples_offset: int
    positions: dict = field(default_factory=dict)
    received: int = 0
    sample_rate: float = 1.0
    model: bytes = b""
    learned: int = 0
    errors: bytes = b""
    event_times: dict = field(default_factory=dict)

    @property
    def generation(self) -> int:
        """The model's generation, read from :attr:`version`.

        >>> Snapshot("lr", "lr-g3@10", 9).generation
        3
        """
        return int(self.version.rsplit("@", 1)[0].rsplit("-g", 1)[1])


def encode(snapshot: Snapshot, signer: Signer) -> bytes:
    """The signed bytes of ``snapshot``."""
    fields = {
        "model_name": snapshot.model_name, "version": snapshot.version,
        "examples_offset": snapshot.examples_offset, "positions": snapshot.positions,
        "received": snapshot.received, "learned": snapshot.learned, "sample_rate": snapshot.sample_rate,
    }
    if snapshot.errors:
        fields["errors"] = base64.b64encode(snapshot.errors).decode("ascii")
    if snapshot.event_times:
        fields["event_times"] = snapshot.event_times
    header = json.dumps(fields, separators=(",", ":")).encode()
    return signer.sign(MAGIC + _LENGTH.pack(len(header)) + header + bytes(snapshot.model), context=CONTEXT)


def decode(data: bytes, signer: Signer) -> Snapshot:
    """The :class:`Snapshot` of ``data`` once ``signer`` has verified it; :class:`SnapshotError`
    (nothing read) otherwise."""
    try:
        blob = signer.verify(bytes(data), context=CONTEXT)
    except SignatureError as exc:
        raise SnapshotError(exc.reason, str(exc).split(": ", 1)[-1]) from exc
    start = len(MAGIC) + _LENGTH.size
    if not blob.startswith(MAGIC) or len(blob) < start:
        raise SnapshotError("bad_header", f"not a snapshot (no {MAGIC.decode()} header)")
    size, = _LENGTH.unpack(blob[len(MAGIC):start])
    try:
        header = json.loads(blob[start:start + size])
        snapshot = Snapshot(
            model_name=header["model_name"], version=header["version"],
            examples_offset=header["examples_offset"], positions=header["positions"], received=header["received"],
            sample_rate=header["sample_rate"], model=blob[start + size:], learned=header["learned"],
            errors=base64.b64decode(header.get("errors", ""), validate=True),
            event_times=header.get("event_times", {}))
    except (ValueError, TypeError, KeyError, binascii.Error) as exc:
        raise SnapshotError("unreadable", f"the snapshot's header cannot be read: {type(exc).__name__}: {exc}") from exc
    if not (isinstance(snapshot.model_name, str) and isinstance(snapshot.version, str)
            and _is_int(snapshot.examples_offset) and _is_int(snapshot.received) and _is_int(snapshot.learned)
            and isinstance(snapshot.positions, dict) and all(_is_int(v) for v in snapshot.positions.values())
            and isinstance(snapshot.event_times, dict)
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in snapshot.event_times.values())
            and isinstance(snapshot.sample_rate, (int, float)) and 0.0 < snapshot.sample_rate <= 1.0
            and len(blob) - start >= size):
        raise SnapshotError("unreadable", "the snapshot's header has fields of the wrong type")
    return snapshot


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
