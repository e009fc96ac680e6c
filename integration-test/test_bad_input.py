"""A corpus of bad input against a real worker, accounted message by message.

Every message sent to ``transactions`` ends in exactly one place: a score (when it can be scored
sensibly: refunds, null keys, out-of-order event times, ...) or a dead letter with
the expected reason. Never a crash, never a silent drop, never twice.
"""
from __future__ import annotations

import math
import random
import struct
from dataclasses import dataclass

from app.data.synthetic import generate
from app.records import DeadLetter, Score, Transaction
from app.replay import to_transaction
from app.serialization import ConfluentAvroCodec, make_registry_client
from app.serialization.errors import REASONS
from app.testing.kafka import produce_raw, read
from app.testing.stack import REGISTRY
from app.testing.worker import assert_healthy

SCORED = "scored"
ANY_REASON = "any dead-letter reason"
BASE_TIME = 1_700_000_000.0


@dataclass
class Case:
    kind: str
    key: bytes | None
    value: bytes | None
    expect: str  # SCORED, a reason, or ANY_REASON


def _schema_without(field: str) -> dict:
    schema = Transaction.avro_schema_to_python()
    return {**schema, "fields": [f for f in schema["fields"] if f["name"] != field]}


def corpus(names) -> list[Case]:
    client = make_registry_client(REGISTRY)
    codec = ConfluentAvroCodec(client, names.transactions, Transaction.avro_schema_to_python())
    no_v3 = ConfluentAvroCodec(client, names.prefix + ".no-v3", _schema_without("V3"))
    other = ConfluentAvroCodec(client, names.prefix + ".other", {
        "type": "record", "name": "Other", "namespace": "fraud.tests", "fields": [{"name": "x", "type": "long"}]})
    row = generate(1, seed=21)[0]

    def tx(tid: str, **changes) -> dict:
        value = to_transaction(row, tid, BASE_TIME, with_label=True)
        value.update(changes)
        return value

    def encoded(tid: str, **changes) -> bytes:
        return codec.dumps(tx(tid, **changes))

    good = encoded("template")
    rng = random.Random(8)
    cases = [Case(f"random-bytes-{i}", f"rnd-{i}".encode(), rng.randbytes(rng.randint(1, 300)), ANY_REASON)
             for i in range(6)]
    cases += [
        Case("empty-value", b"empty", b"", "empty"),
        Case("header-only", b"header", good[:5], "too-short"),
        Case("truncated-after-header", b"trunc-6", good[:6], "truncated"),
        Case("truncated-a-third", b"trunc-3rd", good[: len(good) // 3], "truncated"),
        Case("truncated-last-byte", b"trunc-1", good[:-1], "truncated"),
        Case("bad-magic-byte", b"magic", b"\x01" + good[1:], "bad-magic-byte"),
        Case("unknown-schema-id", b"unknown-id", b"\x00" + struct.pack(">I", 2_000_000_001) + good[5:],
             "unknown-schema-id"),
        Case("another-record's-schema-id", b"other-id", other.dumps({"x": 5}), "schema-mismatch"),
        Case("missing-required-field", b"no-v3", no_v3.dumps({k: v for k, v in tx("no-v3").items() if k != "V3"}),
             "schema-mismatch"),
        Case("oversized-id-500kB", b"big-id", encoded("x" * 500_000), "invalid-value"),
        Case("near-1MB-message", b"near-1mb", encoded("y" * 600_000, card_id="z" * 440_000), "invalid-value"),
        Case("empty-id", b"empty-id", encoded(""), "invalid-value"),
        Case("nan-amount", b"nan", encoded("nan", Amount=math.nan), "invalid-value"),
        Case("inf-amount", b"inf", encoded("inf", Amount=math.inf), "invalid-value"),
        Case("minus-inf-amount", b"-inf", encoded("-inf", Amount=-math.inf), "invalid-value"),
        Case("nan-feature", b"nan-v7", encoded("nan-v7", V7=math.nan), "invalid-value"),
        Case("nan-event-time", b"nan-time", encoded("nan-time", event_time=math.nan), "invalid-value"),
        Case("label-out-of-range", b"class-7", encoded("class-7", Class=7), "invalid-value"),
        Case("tombstone", b"tombstone", None, "empty"),
        # ... and what is odd but fine: scored
        Case("negative-amount-refund", b"refund", encoded("refund", Amount=-42.5), SCORED),
        Case("zero-amount", b"zero", encoded("zero", Amount=0.0), SCORED),
        Case("large-amount-at-the-bound", b"large", encoded("large", Amount=1e12), SCORED),
        Case("large-feature-at-the-bound", b"large-v2", encoded("large-v2", V2=-1e12), SCORED),
        Case("huge-amount", b"huge", encoded("huge", Amount=1e300), "invalid-value"),
        Case("huge-feature", b"huge-v1", encoded("huge-v1", V1=-1e300), "invalid-value"),
        Case("null-key", None, encoded("null-key"), SCORED),
        Case("binary-key", bytes(range(256)), encoded("binary-key"), SCORED),
        Case("unlabelled", b"unlabelled", encoded("unlabelled", Class=None), SCORED),
        Case("out-of-order-3-days-back", b"past", encoded("past", event_time=BASE_TIME - 3 * 86400), SCORED),
        # an event time 100 years ahead would expire every waiting transaction: refused (MAX_EVENT_TIME_SKEW_S)
        Case("far-future-100-years", b"future", encoded("future", event_time=BASE_TIME + 100 * 365 * 86400.0),
             "invalid-value"),
        Case("back-in-order", b"after-future", encoded("after-future", event_time=BASE_TIME + 1), SCORED),
        Case("epoch-zero", b"epoch", encoded("epoch", event_time=0.0), SCORED),
        Case("duplicate-id-first", b"dup", encoded("dup"), SCORED),
        Case("duplicate-id-second", b"dup", encoded("dup"), SCORED),
        Case("no-card-or-merchant", b"no-card", encoded("no-card", card_id=None, merchant_id=None), SCORED),
    ]
    return cases


def test_every_bad_message_is_scored_or_dead_lettered_exactly_once(make_worker, names):
    worker = make_worker()
    cases = corpus(names)
    produce_raw(names.transactions, [(c.key, c.value) for c in cases], max_request_size=4 * 1024 * 1024)
    # a good transaction last: once it is scored, everything before it has been handled
    tail = ConfluentAvroCodec(make_registry_client(REGISTRY), names.transactions, Transaction.avro_schema_to_python())
    produce_raw(names.transactions, [(b"last", tail.dumps(to_transaction(generate(1, seed=5)[0], "last", BASE_TIME, True)))])
    cases.append(Case("good-last", b"last", None, SCORED))

    n_scored = sum(c.expect == SCORED for c in cases)
    n_dead = len(cases) - n_scored
    scores = read(names.scores, Score, expect=n_scored, timeout_s=120)
    letters = read(names.dead_letters, DeadLetter, expect=n_dead, timeout_s=60)
    # anything late (a second copy) has had time to arrive by now: read both again to the end
    scores = read(names.scores, Score, timeout_s=30, idle_s=2.0)
    letters = read(names.dead_letters, DeadLetter, timeout_s=30, idle_s=2.0)

    outcomes: dict[int, list[tuple[str, object]]] = {}
    for _, score, _, _ in scores:
        assert score["partition"] == 0
        outcomes.setdefault(score["offset"], []).append((SCORED, score))
    for _, letter, _, _ in letters:
        assert letter["topic"] == names.transactions and letter["partition"] == 0
        outcomes.setdefault(letter["offset"], []).append((letter["reason"], letter))

    problems = []
    for offset, case in enumerate(cases):
        got = outcomes.pop(offset, [])
        if len(got) != 1:
            problems.append(f"offset {offset} {case.kind}: {len(got)} outcomes {[g[0] for g in got]}")
            continue
        outcome, record = got[0]
        if case.expect == ANY_REASON:
            ok = outcome != SCORED and outcome in REASONS
        else:
            ok = outcome == case.expect
        if not ok:
            problems.append(f"offset {offset} {case.kind}: expected {case.expect}, got {outcome} "
                            f"{(record.get('error') or '')[:200]}")
            continue
        if outcome == SCORED:
            if not 0.0 <= record["fraud_probability"] <= 1.0:
                problems.append(f"offset {offset} {case.kind}: probability {record['fraud_probability']}")
        # the dead letter keeps the message whole, so it can be replayed once fixed
        elif record["key"] != case.key or record["value"] != case.value or not record["error"]:
            problems.append(f"offset {offset} {case.kind}: the dead letter does not hold the message whole")
    assert not outcomes, f"outputs for offsets that were never sent: {sorted(outcomes)}"
    assert not problems, "\n".join(problems)

    assert_healthy(worker)
    assert worker.metric("fraud_dead_letters_total", topic=names.transactions) == n_dead
    assert worker.metric("fraud_events_out_total", topic=names.scores) == n_scored
