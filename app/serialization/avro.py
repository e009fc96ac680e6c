"""A Faust codec for Avro in the Confluent wire format: magic byte 0, 4-byte schema id, body.

Writing registers the record's schema under ``<topic>-value`` once and caches the id. Reading
takes the writer's schema by the id in the message (fetched from the registry once, then cached)
and resolves it to the expected record's schema, so a producer that adds an optional field keeps
being read. A message that cannot be read raises :class:`DecodeError` with the reason.

Compatibility: every subject this codec registers gets ``FULL_TRANSITIVE`` (set before the
schema is registered, so the rule also governs that registration). A new version must be
readable by every earlier one and must read every earlier one:

* Forward: readers that have not changed keep reading. On the input subjects (transactions,
  labels) the producers evolve on their own while the worker reads with the schema it was built
  with: a producer schema that drops a field the worker needs (``Amount``, which has no default)
  is refused at registration, instead of every message of it being dead-lettered. ``BACKWARD``
  checks only the other direction and lets that schema through.
* Backward: history stays readable. The topics are kept, and a fresh worker (a new application
  id) or the Spark backfill reads them from the beginning with the newest schema, so that schema
  must read every older record: a field added without a default is refused too, which
  ``FORWARD_TRANSITIVE`` alone would accept.
* Transitive: against every earlier version, not just the last, since a reader may be any
  number of versions behind.

The output subjects (scores, anomalies, drift alerts, dead letters) get the same rule for the
same reasons with the roles swapped: the worker is their producer and evolves first, and the
readers downstream (the run reports of :mod:`app.report`, any other consumer of the outputs)
keep their own schema and read the topics from the beginning. On every subject, then, a field is added or removed only
with a default.

Apicurio's default for a subject without a rule of its own is ``NONE`` (no check at all), not
Confluent's ``BACKWARD``: the codec always sets the rule rather than rely on a default.
"""
from __future__ import annotations

import io
import math
import struct
import threading
import weakref
from typing import Any, Callable, Mapping

import fastavro
from faust.serializers.codecs import Codec
from schema_registry.client import SchemaRegistryClient
from schema_registry.client.errors import ClientError

from app.serialization.errors import DecodeError
from app.serialization.flat import flat_reader, flat_writer
from app.serialization.registry import register_schema

MAGIC_BYTE = 0
COMPATIBILITY = "FULL_TRANSITIVE"
_HEADER = struct.Struct(">bI")
_CODECS: "weakref.WeakSet[ConfluentAvroCodec]" = weakref.WeakSet()


class ConfluentAvroCodec(Codec):
    """Encode and decode one record type for one topic.

    ``record_schema`` is the Avro schema (dict) of the expected record; ``validate`` may reject a
    decoded value (it raises ``ValueError`` with the detail) before it becomes a record;
    ``compatibility`` is the rule the subject gets when this codec registers its schema
    (``FULL_TRANSITIVE``: see the module's docstring; ``None`` leaves the subject's rule as it is).
    """

    def __init__(
        self,
        client: SchemaRegistryClient,
        topic: str,
        record_schema: Mapping[str, Any],
        validate: Callable[[dict], None] | None = None,
        register_retries: int = 5,
        compatibility: str | None = COMPATIBILITY,
        **kwargs: Any,
    ) -> None:
        self.client = client
        self.topic = topic
        self.record_schema = dict(record_schema)
        self.validate = validate
        self.register_retries = register_retries
        self.compatibility = compatibility
        self._reader_schema = fastavro.parse_schema(self.record_schema)
        self._write_flat = flat_writer(self._reader_schema)  # app.serialization.flat; None: fastavro writes
        self._writer_id: int | None = None
        self._readers: dict[int, Any] = {}
        self._resolve_to: dict[int, Any] = {}  # per writer schema id: the reader schema, None when the same
        self._flat: dict[int, Any] = {}  # per writer schema id: its quick reader (app.serialization.flat), if any
        self._lock = threading.Lock()
        super().__init__(client=client, topic=topic, record_schema=record_schema, **kwargs)
        _CODECS.add(self)

    # -- writing ----------------------------------------------------------------------------------
    @property
    def schema_id(self) -> int:
        """The registry id of this codec's schema, registering it on first use."""
        if self._writer_id is None:
            with self._lock:
                if self._writer_id is None:
                    self._writer_id = register_schema(
                        self.client, self.topic, self.record_schema, retries=self.register_retries,
                        compatibility=self.compatibility,
                    )
        return self._writer_id

    def _dumps(self, obj: Any) -> bytes:
        if hasattr(obj, "to_representation"):
            obj = obj.to_representation()
        if self._write_flat is not None:
            body = self._write_flat(obj)
            if body is not None:
                return _HEADER.pack(MAGIC_BYTE, self.schema_id) + body
        out = io.BytesIO()
        out.write(_HEADER.pack(MAGIC_BYTE, self.schema_id))
        fastavro.schemaless_writer(out, self._reader_schema, obj)
        return out.getvalue()

    # -- reading ----------------------------------------------------------------------------------
    def _writer_schema(self, schema_id: int) -> Any:
        parsed = self._readers.get(schema_id)
        if parsed is None:
            try:
                found = self.client.get_by_id(schema_id)
            except ClientError as exc:
                if exc.http_code == 404:
                    raise DecodeError("unknown-schema-id", f"schema id {schema_id} is not in the registry") from exc
                raise DecodeError("registry-unavailable", f"schema id {schema_id}: {exc}") from exc
            except Exception as exc:  # connection errors
                raise DecodeError("registry-unavailable", f"schema id {schema_id}: {exc}") from exc
            if found is None:
                raise DecodeError("unknown-schema-id", f"schema id {schema_id} is not in the registry")
            try:
                parsed = fastavro.parse_schema(found.schema)
            except Exception as exc:
                raise DecodeError("schema-mismatch", f"schema id {schema_id} is not a usable Avro schema: {exc}") from exc
            # fastavro compares the two schemas on every read (a deep comparison of dicts, several
            # µs) and resolves one to the other unless they are equal: compared once here instead
            same = parsed == self._reader_schema
            self._resolve_to[schema_id] = None if same else self._reader_schema
            self._flat[schema_id] = flat_reader(parsed) if same else None
            self._readers[schema_id] = parsed
        return parsed

    def _loads(self, data: bytes) -> dict:
        if data is None or len(data) == 0:
            raise DecodeError("empty", "the message has no value")
        if data[0] != MAGIC_BYTE:
            raise DecodeError("bad-magic-byte", f"first byte is 0x{data[0]:02x}, expected 0x00 (Confluent wire format)")
        if len(data) < 6:
            raise DecodeError("too-short", f"{len(data)} bytes, the header alone is 5")
        _, schema_id = _HEADER.unpack_from(data)
        writer = self._writer_schema(schema_id)
        read_flat = self._flat.get(schema_id)
        if read_flat is not None:
            try:
                value, end = read_flat(data, 5)
            except Exception:  # noqa: BLE001 - fastavro reads it below and says what is wrong
                end = -1
            if end == len(data):
                return self._validated(value)
        body = io.BytesIO(data)
        body.seek(5)
        try:
            value = fastavro.schemaless_reader(body, writer, self._resolve_to.get(schema_id, self._reader_schema))
        except EOFError as exc:
            raise DecodeError("truncated", f"body ends early for schema id {schema_id} ({len(data)} bytes)") from exc
        except fastavro.read.SchemaResolutionError as exc:
            raise DecodeError("schema-mismatch", f"schema id {schema_id} cannot be read as {self.record_schema.get('name')}: {exc}") from exc
        except Exception as exc:  # bad varints, invalid utf-8, out-of-range union index, ...
            raise DecodeError("schema-mismatch", f"body does not fit schema id {schema_id}: {type(exc).__name__}: {exc}") from exc
        if body.tell() != len(data):
            raise DecodeError("schema-mismatch", f"{len(data) - body.tell()} bytes left over after the record (schema id {schema_id})")
        return self._validated(value)

    def _validated(self, value: dict) -> dict:
        if self.validate is not None:
            try:
                self.validate(value)
            except ValueError as exc:
                raise DecodeError("invalid-value", str(exc)) from exc
        return value


def register_schemas(topics) -> dict[str, int]:
    """Register now the schemas of this process's codecs for ``topics``; their ids by topic.

    A codec registers its schema on its first write. A worker calls this at start, once the
    registry answers, so that no later write has to reach the registry (it may be down by then,
    and registering blocks the caller while it retries).
    """
    wanted = set(topics)
    return {codec.topic: codec.schema_id for codec in list(_CODECS) if codec.topic in wanted}


MAX_ID_LENGTH = 256
# Far beyond any amount or PCA component; much larger numbers overflow the models' arithmetic
# (River's Gaussian splitter raises OverflowError from about 1e154).
MAX_ABS_FEATURE = 1e12
_FEATURES = tuple(f"V{i}" for i in range(1, 29)) + ("Amount",)


def validate_transaction(value: dict) -> None:
    """Reject values no model should see: an empty or oversized id, a non-finite number, a feature
    beyond ``MAX_ABS_FEATURE``, a label other than 0, 1 or null.

    >>> validate_transaction({"transaction_id": "", "event_time": 0.0})
    Traceback (most recent call last):
    ...
    ValueError: empty transaction_id
    >>> validate_transaction({"transaction_id": "t", "event_time": 0.0, "Amount": -1e300})
    Traceback (most recent call last):
    ...
    ValueError: Amount is -1e+300 (at most 1e+12 in absolute value)
    """
    if not value.get("transaction_id"):
        raise ValueError("empty transaction_id")
    for name in ("transaction_id", "card_id", "merchant_id"):
        text = value.get(name)
        if text is not None and len(text) > MAX_ID_LENGTH:
            raise ValueError(f"{name} is {len(text)} characters long (at most {MAX_ID_LENGTH})")
    for name, v in value.items():
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"{name} is {v}")
    for name in _FEATURES:
        v = value.get(name)
        if v is not None and abs(v) > MAX_ABS_FEATURE:
            raise ValueError(f"{name} is {v:g} (at most {MAX_ABS_FEATURE:g} in absolute value)")
    if value.get("Class") not in (None, 0, 1):
        raise ValueError(f"Class is {value['Class']} (0, 1 or null)")


def validate_label(value: dict) -> None:
    """Reject labels no model should learn: an empty or oversized transaction id, a label other
    than 0 or 1, a non-finite time.

    >>> validate_label({"transaction_id": "t", "label": 7, "event_time": 0.0})
    Traceback (most recent call last):
    ...
    ValueError: label is 7 (0 or 1)
    >>> validate_label({"transaction_id": "t", "label": 1, "event_time": float("nan")})
    Traceback (most recent call last):
    ...
    ValueError: event_time is nan
    """
    transaction_id = value.get("transaction_id")
    if not transaction_id:
        raise ValueError("empty transaction_id")
    if len(transaction_id) > MAX_ID_LENGTH:
        raise ValueError(f"transaction_id is {len(transaction_id)} characters long (at most {MAX_ID_LENGTH})")
    if value.get("label") not in (0, 1):
        raise ValueError(f"label is {value.get('label')} (0 or 1)")
    for name, v in value.items():
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"{name} is {v}")
