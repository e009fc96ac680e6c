"""Tests for the Handbook's transaction simulator (app.data.simulator) and its replay."""

from __future__ import annotations

import asyncio
import io
import struct

import fastavro
import numpy as np
import pytest

import app.replay as replay_module
from app.data import simulator
from app.data.simulator import (CUSTOMER_DAYS, PUBLISHED, SECONDS_PER_DAY, TERMINAL_DAYS, SimulatorConfig,
                                load, simulate)
from app.records import Label, Transaction
from app.records.transaction import V_NAMES
from tests.serialization.test_avro_codec import MemoryRegistry

CONFIG = SimulatorConfig(n_customers=300, n_terminals=600, n_days=45)


@pytest.fixture(scope="module")
def sim() -> simulator.Simulation:
    return simulate(CONFIG, seed=7)


def test_same_seed_same_rows_other_seed_other_rows(sim) -> None:
    again = simulate(CONFIG, seed=7)
    assert again == sim and list(again.rows(0, 50)) == list(sim.rows(0, 50))
    assert simulate(CONFIG, seed=8) != sim


def test_times_are_sorted_and_inside_their_days(sim) -> None:
    assert len(sim) > 10_000
    assert np.all(np.diff(sim.event_time) >= 0)
    second = (sim.event_time - CONFIG.start_epoch) % SECONDS_PER_DAY
    assert second.min() > 0 and second.max() < SECONDS_PER_DAY
    assert sim.day.min() == 0 and sim.day.max() == CONFIG.n_days - 1
    assert CONFIG.start_epoch == 1_522_540_800  # 2018-04-01T00:00:00Z


def test_amounts_are_cents_and_above_220_always_fraud(sim) -> None:
    assert np.allclose(sim.amount * 100, np.round(sim.amount * 100))
    assert sim.amount.min() >= 0
    large = sim.amount > 220
    assert large.sum() > 0 and np.all(sim.fraud[large] == 1)
    assert np.all(sim.amount[sim.scenario == 1] > 220)


def test_compromised_terminals_make_frauds_for_28_days(sim) -> None:
    day = sim.day
    window_of = np.zeros(len(sim), dtype=bool)
    for d, terminals in enumerate(sim.compromised_terminals):
        inside = np.isin(sim.terminal_id, terminals) & (day >= d) & (day < d + TERMINAL_DAYS)
        assert np.all(sim.fraud[inside] == 1), d
        window_of |= inside
    assert window_of.sum() > 100
    # and scenario 2 marks nothing else (scenario 3 may take over inside a window)
    assert np.all(window_of[sim.scenario == 2])
    assert np.all(np.isin(sim.scenario[window_of], (2, 3)))


def test_compromised_customers_lose_a_third_of_their_transactions_for_14_days(sim) -> None:
    day = sim.day
    window_of = np.zeros(len(sim), dtype=bool)
    for d, customers in enumerate(sim.compromised_customers):
        inside = np.isin(sim.customer_id, customers) & (day >= d) & (day < d + CUSTOMER_DAYS)
        assert (sim.scenario[inside] == 3).sum() >= inside.sum() // 3, d
        window_of |= inside
    assert np.all(window_of[sim.scenario == 3])
    assert np.all(sim.fraud[sim.scenario == 3] == 1)
    assert np.all(sim.fraud[sim.scenario == 0] == 0) and np.all(sim.fraud[sim.scenario > 0] == 1)


def test_customers_use_only_terminals_within_the_radius() -> None:
    rng = np.random.default_rng(0)
    customers, terminals = rng.uniform(0, 100, (70, 2)), rng.uniform(0, 100, (300, 2))
    indptr, indices = simulator._terminals_in_reach(customers, terminals, 9.0, chunk=16)
    for c in range(len(customers)):
        expected = np.flatnonzero(np.hypot(*(terminals - customers[c]).T) < 9.0)
        assert indices[indptr[c]:indptr[c + 1]].tolist() == expected.tolist()


def test_rows_carry_the_wire_ids(sim) -> None:
    row = next(sim.rows(5))
    assert row["transaction_index"] == 5
    assert row["card_id"] == f"cust-{sim.customer_id[5]:06d}" and row["terminal_id"] == f"term-{sim.terminal_id[5]:06d}"
    assert row["event_time"] == float(sim.event_time[5]) and row["Amount"] == sim.amount[5]
    assert len(list(sim.rows(len(sim) - 3))) == 3


def test_load_caches_per_configuration_and_seed(tmp_path, sim) -> None:
    first = load(CONFIG, 7, tmp_path, progress=False)
    path = simulator.cache_path(CONFIG, 7, tmp_path)
    assert first == sim and path.is_file()
    stamp = path.stat().st_mtime_ns
    assert load(CONFIG, 7, tmp_path, progress=False) == sim and path.stat().st_mtime_ns == stamp
    assert simulator.cache_path(CONFIG, 8, tmp_path) != path
    for damage in (b"not an archive", path.read_bytes()[:1000]):  # not a zip file; a truncated one
        path.write_bytes(damage)
        assert load(CONFIG, 7, tmp_path, progress=False) == sim  # unreadable: simulated again
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_published_configuration_gives_the_published_counts() -> None:
    counts = simulator.summary(simulate(PUBLISHED, seed=0))
    assert counts["transactions_ratio"] == pytest.approx(1.0, abs=0.05), counts
    assert counts["frauds_ratio"] == pytest.approx(1.0, abs=0.05), counts
    assert 0.007 < counts["fraud_rate"] < 0.01


# -- replay ------------------------------------------------------------------------------------------


class FakeProducer:
    """What the replay uses of aiokafka's producer; every send is recorded in order."""

    sent: list[tuple[str, bytes, bytes]]

    def __init__(self, **kwargs) -> None:
        FakeProducer.sent = []

    async def start(self) -> None:
        pass

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future:
        FakeProducer.sent.append((topic, value, key))
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def flush(self) -> None:
        pass

    async def stop(self) -> None:
        pass


@pytest.fixture
def fake_kafka(monkeypatch):
    registry = MemoryRegistry()

    async def ensure_topics(*args, **kwargs) -> None:
        pass

    monkeypatch.setattr(replay_module, "AIOKafkaProducer", FakeProducer)
    monkeypatch.setattr(replay_module, "ensure_topics", ensure_topics)
    monkeypatch.setattr(replay_module, "make_registry_client", lambda url: registry)

    parsed: dict = {}

    def decode(record: type, data: bytes) -> dict:
        schema_id = struct.unpack(">bI", data[:5])[1]
        if schema_id not in parsed:
            parsed[schema_id] = (fastavro.parse_schema(registry.by_id[schema_id].schema),
                                 fastavro.parse_schema(record.avro_schema_to_python()))
        return fastavro.schemaless_reader(io.BytesIO(data[5:]), *parsed[schema_id])

    def sent() -> list[tuple[str, dict]]:
        return [(topic, decode(Transaction if topic == "tx" else Label, value)) for topic, value, _ in FakeProducer.sent]

    return sent


def _replay(rows, **kwargs):
    return asyncio.run(replay_module.replay(rows, transactions_topic="tx", labels_topic="lb", progress=False, **kwargs))


def test_replay_sends_labels_a_week_of_event_time_later(fake_kafka, sim) -> None:
    delay = 7 * SECONDS_PER_DAY
    n = int(np.searchsorted(sim.event_time, sim.event_time[0] + 9 * SECONDS_PER_DAY))  # the first nine days
    stats = _replay(sim.rows(0, n), labels="delayed", label_delay_event_s=delay)
    assert stats.transactions == stats.labels == n and stats.frauds == int(sim.fraud[:n].sum())
    sent = fake_kafka()
    txs = [v for topic, v in sent if topic == "tx"]
    assert all(v["Class"] is None and v["fraud_scenario"] is None for v in txs)
    assert [v["event_time"] for v in txs] == sim.event_time[:n].astype(float).tolist()  # simulated time, not now
    assert [v["transaction_id"] for v in txs] == [f"tx-{i:09d}" for i in range(n)]
    newest = None
    early_labels = 0
    for topic, v in sent:
        if topic == "tx":
            newest = v["event_time"]
            continue
        index = int(v["transaction_id"].split("-")[1])
        assert v["label"] == sim.fraud[index] and v["event_time"] == sim.event_time[index]
        assert v["label_time"] == v["event_time"] + delay
        if newest < sim.event_time[n - 1]:  # sent during the stream: right after the first tx a week later
            early_labels += 1
            first_late = int(np.searchsorted(sim.event_time[:n], sim.event_time[index] + delay))
            assert newest == sim.event_time[first_late]
    assert early_labels > 1000


def test_replay_in_event_sends_the_simulator_fields(fake_kafka, sim) -> None:
    fraud_at = int(np.flatnonzero(sim.scenario == 2)[0])
    _replay(sim.rows(fraud_at, fraud_at + 20), labels="in-event", start_index=fraud_at)
    sent = fake_kafka()
    assert [topic for topic, _ in sent] == ["tx"] * 20
    first = sent[0][1]
    assert first["transaction_id"] == f"tx-{fraud_at:09d}"
    assert first["Class"] == 1 and first["fraud_scenario"] == 2
    assert first["card_id"] == simulator.card_key(sim.customer_id[fraud_at])
    assert first["terminal_id"] == simulator.terminal_key(sim.terminal_id[fraud_at])
    assert first["Amount"] == sim.amount[fraud_at] and all(first[n] == 0.0 for n in V_NAMES)
    assert Transaction(**first).features()["Amount"] == sim.amount[fraud_at]


@pytest.mark.parametrize(("argv", "days"), [
    (["--labels", "delayed"], 7.0),
    (["--labels", "delayed", "--label-delay-days", "2.5"], 2.5),
    (["--labels", "delayed", "--label-delay-events", "100"], 0.0),
])
def test_replay_cli_delays_simulator_labels_by_a_week_by_default(monkeypatch, argv, days) -> None:
    seen = {}

    def rows(source, rows, skip, **kwargs):
        seen.update(source=source, rows=rows, skip=skip, **kwargs)
        return iter([])

    async def replay(rows, **kwargs):
        seen.update(kwargs)
        return replay_module.ReplayStats()

    monkeypatch.setattr(replay_module, "dataset_rows", rows)
    monkeypatch.setattr(replay_module, "replay", replay)
    assert replay_module.main(["--source", "simulator", "--simulator", "small", "--seed", "3", *argv]) == 0
    assert seen["label_delay_event_s"] == days * SECONDS_PER_DAY
    assert (seen["source"], seen["simulator"], seen["seed"], seen["labels"]) == ("simulator", "small", 3, "delayed")
