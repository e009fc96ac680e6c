"""``POST /score``: a transaction's fraud probability now, for a caller that waits for the decision
(a payment switch authorizing a card), without going through Kafka.

The body is one transaction: a JSON object with the fields of :class:`~app.records.Transaction`,
or the Avro of the transactions topic in the Confluent wire format (magic byte 0, schema id, body:
what a producer sends to the topic); the first byte tells which, whatever the ``Content-Type``. It
is checked as the stream checks it (:func:`~app.serialization.avro.validate_transaction`). The
answer::

    {"transaction_id": "t-1", "fraud_probability": 0.031, "decision": false, "threshold": 0.5,
     "model_version": "arf10+lr-g0", "events_learned": 52000, "members": [0.0, 0.05, 0.043],
     "partition": 1}

``members`` are the probabilities of the blend's members (the forest, the regression, the weighted
regression: :func:`~app.learning.pipeline.build_model`), null when the model is not a blend.

The model is that of the partition the transaction's key maps to with Kafka's default partitioner
(murmur2 of the key bytes, modulo the partition count of the transactions topic). The key is the one
producers use (:func:`app.replay.message_key`: the card id, else the transaction id), so it is where
the card's transactions go and the model that learns them; with window features on
(``WINDOW_FEATURES``) the input has the windows that partition holds, the transaction added, as the
stream would compute them, and nothing is stored (:meth:`app.scoring.windows.ScoringWindows.preview`).
When another worker owns
that partition the request is forwarded to it (its URL is the one Faust's assignor publishes for
the partition: ``app.router.external_topics_metadata()``) and its answer is returned; a forwarded
request is never forwarded again. Faust's own ``topic_route`` does not fit: it takes the key from
the URL and forwards no body.

The prediction is a ``("predict", partition, x)`` operation of the model host
(:mod:`app.learning.learner_set`). It learns nothing (learning stays on the stream), so a model
process applies it ahead of the stream's operations waiting there (:mod:`app.learning.model_host`):
it sees the model as of the stream operations applied before it, and the answer's
``model_version`` and ``events_learned`` are that model's. In central learning the model is the
worker's replica (``("predict", ("replica",), x)``): the answer carries the replica's snapshot version
and its probability corrected for the snapshot's sample rate, as a stream score does
(:mod:`app.scoring.replica`).

Errors: 400 with ``{"error": reason}`` for a body that is not a valid transaction; 503 with
``Retry-After`` while the worker is not ready (a rebalance, tables recovering, the partition's model
not open yet), when no worker owns the partition or the owner does not answer; 500 when the model
fails on the transaction.

>>> from aiokafka.partitioner import DefaultPartitioner
>>> [key_partition(key, 4) for key in (b"tx-1", b"tx-2", b"tx-3")]
[1, 1, 0]
>>> all(key_partition(key, 4) == DefaultPartitioner()(key, [0, 1, 2, 3], []) for key in (b"tx-1", b"tx-3", b"x"))
True
>>> parse_json(b'{"transaction_id": "t"}')
Traceback (most recent call last):
...
app.http_score.BadRequest: missing fields: Amount, V1, V10, V11, V12, V13, V14, V15, V16, V17, V18, V19, V2, V20, V21, V22, V23, V24, V25, V26, V27, V28, V3, V4, V5, V6, V7, V8, V9, event_time
"""
from __future__ import annotations

import asyncio
import functools
import json
import logging
from typing import Any, Callable

import aiohttp
import fastavro
from aiokafka.partitioner import murmur2
from fastavro.validation import ValidationError, validate
from faust.web import View

from app.learning.learner_set import OpFailed
from app.records import Transaction
from app.records.transaction import TransactionValue
from app.replay import message_key
from app.serialization.avro import validate_transaction
from app.serialization.errors import DecodeError

log = logging.getLogger(__name__)

PATH = "/score"
FORWARDED_HEADER = "X-Fraud-Forwarded"
FORWARD_TIMEOUT_S = 5.0


class BadRequest(ValueError):
    """The body is not a transaction (400)."""


class Unavailable(Exception):
    """This worker cannot score the transaction now (503)."""


def key_partition(key: bytes, partitions: int) -> int:
    """The partition of ``key`` among ``partitions``, as aiokafka's and Java's default partitioner
    choose it (``murmur2(key) & 0x7fffffff % partitions``)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


@functools.lru_cache(maxsize=1)
def _schema() -> tuple[Any, frozenset[str], frozenset[str], frozenset[str]]:
    """The parsed Transaction schema, its field names, the required ones and the ``double`` ones."""
    raw = Transaction.avro_schema_to_python()
    fields = raw["fields"]
    required = frozenset(f["name"] for f in fields if "default" not in f)
    doubles = frozenset(f["name"] for f in fields if f["type"] == "double" or
                        (isinstance(f["type"], list) and "double" in f["type"]))
    return fastavro.parse_schema(raw), frozenset(f["name"] for f in fields), required, doubles


@functools.lru_cache(maxsize=1)
def _defaults() -> dict[str, Any]:
    """The Transaction fields a body may leave out, with their defaults."""
    return {f["name"]: f["default"] for f in Transaction.avro_schema_to_python()["fields"] if "default" in f}


_PLAIN_TYPES = {"double": (float,), "string": (str,), "long": (int,), "null": (type(None),)}
_LONG = 1 << 63


@functools.lru_cache(maxsize=1)
def _plain_types() -> dict[str, frozenset[type]]:
    """Per field of the Transaction schema, the Python types a valid value of it has in the usual
    case (a ``double`` as a float, a ``long`` as an int, ``null`` as None)."""
    out = {}
    for field in Transaction.avro_schema_to_python()["fields"]:
        kinds = field["type"] if isinstance(field["type"], list) else [field["type"]]
        out[field["name"]] = frozenset(t for kind in kinds for t in _PLAIN_TYPES.get(kind, ()))
    return out


def _plain(value: dict) -> bool:
    """Whether each of the known fields of ``value`` has a type of :func:`_plain_types` (a long in
    its range): then the schema accepts it as it is, and fastavro's check is not needed.

    >>> tx = {"transaction_id": "t", "event_time": 1.0, "Amount": 2.0, "Class": 1, "card_id": None}
    >>> _plain(tx), _plain({**tx, "Amount": 2}), _plain({**tx, "Class": True}), _plain({**tx, "Class": 1 << 63})
    (True, False, False, False)
    """
    types = _plain_types()
    for name, v in value.items():
        kind = type(v)
        if kind not in types[name] or (kind is int and not -_LONG <= v < _LONG):
            return False
    return True


def checked(value: Any) -> dict:
    """``value`` if it is a valid transaction (its ``double`` fields as floats); else
    :class:`BadRequest` with the reason.

    >>> tx = {"transaction_id": "t", "event_time": 1, "Amount": 2, **{f"V{i}": 0.0 for i in range(1, 29)}}
    >>> checked(tx)["Amount"]
    2.0
    >>> checked({**tx, "Amount": "2"})
    Traceback (most recent call last):
    ...
    app.http_score.BadRequest: fraud.records.Transaction.Amount is <2> of type <class 'str'> expected double
    >>> checked({**tx, "amount": 2.0})
    Traceback (most recent call last):
    ...
    app.http_score.BadRequest: unknown fields: amount
    """
    if not isinstance(value, dict):
        raise BadRequest(f"the body must be a JSON object, not {type(value).__name__}")
    schema, names, required, doubles = _schema()
    missing = required - value.keys()
    if missing:
        raise BadRequest(f"missing fields: {', '.join(sorted(missing))}")
    unknown = value.keys() - names
    if unknown:
        raise BadRequest(f"unknown fields: {', '.join(sorted(unknown))}")
    if not _plain(value):  # fastavro's check (slower) takes the other values, and says what is wrong
        try:
            validate(value, schema, raise_errors=True)
        except ValidationError as exc:
            raise BadRequest("; ".join(str(error) for error in exc.errors)) from None
        value = {name: float(v) if name in doubles and isinstance(v, int) else v for name, v in value.items()}
    try:
        validate_transaction(value)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    return value


def parse_json(body: bytes) -> dict:
    """The transaction in a JSON body (see :func:`checked`)."""
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from None
    return checked(value)


def parse_avro(body: bytes, loads: Callable[[bytes], dict]) -> dict:
    """The transaction in a Confluent-framed Avro body, read by ``loads`` (the transactions topic's
    codec, which validates it); a registry that does not answer is :class:`Unavailable`."""
    try:
        value = loads(body)
    except DecodeError as exc:
        if exc.reason == "registry-unavailable":
            raise Unavailable(str(exc)) from None
        raise BadRequest(str(exc)) from None
    return checked(value)


def owner_url(metadata: dict, topic: str, partition: int) -> str | None:
    """The URL of the worker the assignor gave ``partition`` of ``topic`` to, from
    ``app.router.external_topics_metadata()`` (``{url: {topic: [partitions]}}``); None if none.

    >>> owner_url({"http://a:6066": {"tx": [0, 2]}, "http://b:6066": {"tx": [1]}}, "tx", 1)
    'http://b:6066'
    """
    for url, topics in metadata.items():
        if partition in topics.get(topic, ()):
            return str(url)
    return None


async def predict(scorer, partition: int, value: dict) -> dict:
    """The score of the transaction ``value`` by the model of ``partition`` of this worker (open:
    else :class:`Unavailable`); nothing is learned."""
    state = scorer.partitions.get(partition)
    if state is None:
        raise Unavailable(f"the model of partition {partition} is not open yet")
    tx = TransactionValue({**_defaults(), **value})
    x = scorer.features(tx)
    if scorer.windows is not None:  # the windows the stream's model learns with, the transaction added
        x = scorer.windows.preview(tx, x, partition)
    host = await scorer.host()
    result, = await host.submit([("predict", scorer.model_key(partition), x)])
    if isinstance(result, OpFailed):
        raise RuntimeError(result.message)
    probability, members, version, events_learned = result
    if scorer.replica is not None:  # central learning: the replica's snapshot, its probability corrected
        replica = scorer.replica
        probability, version, events_learned = replica.correct(probability), replica.version, replica.events_learned
    return {
        "transaction_id": value["transaction_id"], "fraud_probability": probability,
        "decision": probability >= scorer.threshold, "threshold": scorer.threshold,
        "model_version": version, "events_learned": events_learned, "members": members, "partition": partition,
    }


def register(app, scorer, topic: str, *, retry_after_s: int, not_ready: Callable[[], list[str]],
             assigned: Callable[[], set[int]], avro_loads: Callable[[], Callable[[bytes], dict]],
             partition_of: Callable[[bytes], int | None] | None = None,
             forward_timeout_s: float = FORWARD_TIMEOUT_S) -> None:
    """Put ``POST /score`` on ``app``. ``not_ready()`` says what keeps this worker from scoring
    (a rebalance, tables not recovered: :func:`app.http.readiness_missing`); ``assigned()`` gives
    the partitions of ``topic`` assigned here; ``avro_loads()`` gives the transactions topic's
    decoder (made on the first Avro body); ``partition_of(key)`` the partition of a message key
    (by default the consumer's: Kafka's default partitioner over the topic's partitions, None while
    the topic's metadata is unknown)."""
    if partition_of is None:
        def partition_of(key: bytes) -> int | None:
            return app.consumer.key_partition(topic, key)

    decoder: list[Callable[[bytes], dict]] = []
    retry = {"Retry-After": str(retry_after_s)}

    def unavailable(view, reason: str):
        return view.json({"error": reason}, status=503, headers=retry)

    async def forward(view, request, url: str, body: bytes):
        headers = {"Content-Type": request.headers.get("Content-Type", "application/json"), FORWARDED_HEADER: "1"}
        try:
            async with app.http_client.post(url.rstrip("/") + PATH, data=body, headers=headers,
                                            timeout=aiohttp.ClientTimeout(total=forward_timeout_s)) as response:
                text = await response.text()
                extra = {"Retry-After": response.headers["Retry-After"]} if "Retry-After" in response.headers else None
                return view.text(text, content_type=response.content_type, status=response.status, headers=extra)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            return unavailable(view, f"the owner of partition, {url}, did not answer: {type(exc).__name__}: {exc}")

    @app.page(PATH)
    class Score(View):
        async def post(self, request):  # noqa: ANN001 - Faust view signature
            body = await request.read()
            try:
                if body[:1] == b"\x00":  # the Confluent wire format's magic byte; JSON never starts so
                    if not decoder:
                        decoder.append(avro_loads())
                    value = parse_avro(body, decoder[0])
                else:
                    value = parse_json(body)
            except BadRequest as exc:
                return self.json({"error": str(exc)}, status=400)
            except Unavailable as exc:
                return unavailable(self, str(exc))
            try:
                partition = partition_of(message_key(value))
            except Exception as exc:  # the consumer not started yet
                log.debug("no partition for %r", value["transaction_id"], exc_info=True)
                return unavailable(self, f"the partitions of {topic} are not known yet ({type(exc).__name__})")
            if partition is None:
                return unavailable(self, f"the partitions of {topic} are not known yet")
            if app.rebalancing:
                return unavailable(self, "a rebalance is under way")
            url = owner_url(app.router.external_topics_metadata(), topic, partition)
            if url is not None and url != str(app.conf.canonical_url) and not request.headers.get(FORWARDED_HEADER):
                return await forward(self, request, url, body)
            missing = not_ready()
            if missing:
                return unavailable(self, "; ".join(missing))
            if partition not in assigned():
                return unavailable(self, f"partition {partition} of {topic} is not assigned to this worker")
            try:
                return self.json(await predict(scorer, partition, value))
            except Unavailable as exc:
                return unavailable(self, str(exc))
            except Exception as exc:
                log.exception("scoring %r at partition %s failed", value["transaction_id"], partition)
                return self.json({"error": f"scoring failed: {exc}"}, status=500)
