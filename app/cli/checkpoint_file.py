"""A partition's model checkpoint as a file: what ``checkpoint export`` writes and ``import`` reads.

The file is ``FSCKPT1`` and a newline, one line of JSON (the header: where the checkpoint came
from, its stream positions, the size of the payload), the payload (the checkpoint as stored in the
table, without its signature: :func:`app.state.checkpointed.envelope` around the model checkpoint),
and the SHA-256 of everything before it. :func:`read` refuses a file whose digest does not match
(truncated or altered in transit). The digest checks integrity, not origin: anyone can write a
file that passes it, and importing a file lets the workers unpickle it (see
:mod:`app.state.signing`): import only files exported from a cluster you trust.

>>> from app.state.checkpointed import envelope
>>> data = dump({"app_id": "fraud-detector", "partition": 0}, envelope({"transactions": 41}, b"FRDLmodel"))
>>> header, payload = read(data)
>>> header["app_id"], header["payload_bytes"], payload[-9:]
('fraud-detector', 37, b'FRDLmodel')
>>> read(data[:-1] + bytes([data[-1] ^ 1]))
Traceback (most recent call last):
...
app.cli.checkpoint_file.CheckpointFileError: the file's SHA-256 does not match its content (truncated or altered)
"""
from __future__ import annotations

import hashlib
import json

MAGIC = b"FSCKPT1\n"
FORMAT = 1
_DIGEST_BYTES = 32


class CheckpointFileError(ValueError):
    """The bytes are not an intact checkpoint file."""


def dump(header: dict, payload: bytes) -> bytes:
    """The file of ``payload`` with ``header`` (to which the format and the payload's size are added)."""
    line = json.dumps({**header, "format": FORMAT, "payload_bytes": len(payload)}, sort_keys=True).encode()
    body = MAGIC + line + b"\n" + payload
    return body + hashlib.sha256(body).digest()


def read(data: bytes) -> tuple[dict, bytes]:
    """``(header, payload)`` of a file written by :func:`dump`; :class:`CheckpointFileError` if it is
    not one, or is not intact."""
    if not data.startswith(MAGIC):
        raise CheckpointFileError("not a checkpoint file (it does not start with FSCKPT1)")
    if len(data) < len(MAGIC) + _DIGEST_BYTES or hashlib.sha256(data[:-_DIGEST_BYTES]).digest() != data[-_DIGEST_BYTES:]:
        raise CheckpointFileError("the file's SHA-256 does not match its content (truncated or altered)")
    body = data[len(MAGIC):-_DIGEST_BYTES]
    line, newline, payload = body.partition(b"\n")
    try:
        header = json.loads(line)
    except ValueError as exc:
        raise CheckpointFileError(f"unreadable header: {exc}") from exc
    if not newline or header.get("format") != FORMAT:
        raise CheckpointFileError(f"checkpoint file format {header.get('format')}, this code reads {FORMAT}")
    if header.get("payload_bytes") != len(payload):
        raise CheckpointFileError(f"the payload has {len(payload)} bytes, the header says {header.get('payload_bytes')}")
    return header, payload
