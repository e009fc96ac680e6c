"""Window features on the scorer's path, with in-memory tables: the model input of each transaction
equals the pure driver's (:class:`~app.features.stream.StreamFeatures`) whatever the partitioning,
a transaction read again is not counted twice, labels reach their terminal once, idle cards are
deleted, and a transaction without ids keeps its raw input."""
from __future__ import annotations

import asyncio
import json
import zlib

import pytest

import settings
from app import configured, metrics
from app.data.simulator import CONFIGS, load
from app.features.stream import StreamFeatures
from app.learning.model_host import LocalHost
from app.records import Transaction
from app.replay import to_transaction
from app.scoring import Item, Scorer
from app.scoring.windows import ScoringWindows, TerminalLabels, decode_card
from app.state.pending import decode_pending
from tests.fakes import ChangelogTable

RAW = ["Amount"]


async def local_host():
    return LocalHost()


class Sent:
    """A terminal-labels topic: records (key, value) and gives a confirmation future."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes]] = []

    def __call__(self, key: bytes, value: bytes):
        self.sent.append((key, value))
        future = asyncio.get_running_loop().create_future()
        future.set_result(len(self.sent))
        return future


def features():
    return configured.transaction_features(settings)


def make_scorer(cards=None, terminals=None, send=None, pending=None):
    windows = ScoringWindows(features(), cards if cards is not None else ChangelogTable(),
                             terminals if terminals is not None else ChangelogTable(), send or Sent())
    return Scorer(local_host, ChangelogTable(), pending if pending is not None else ChangelogTable(),
                  model_factory=configured.model_factory(settings, kind="lr"),
                  features=lambda tx: {name: getattr(tx, name) for name in RAW}, record=Transaction, windows=windows,
                  pending_ttl_s=1e9)


@pytest.fixture(scope="module")
def rows():
    """Two simulated weeks of the small configuration, 40 cards' transactions."""
    sim = load(CONFIGS["small"], 0)
    out, start = [], None
    for row in sim.rows(0, None):
        start = row["event_time"] if start is None else start
        if row["event_time"] > start + 14 * 86400:
            break
        if int(row["card_id"].split("-")[-1]) < 40:
            out.append(row)
    return out


def partition_of(card_id: str, partitions: int) -> int:
    return zlib.crc32(card_id.encode()) % partitions


def score_rows(scorer, rows, partitions: int, with_label: bool = False):
    """Score ``rows`` in order, each in its card's partition (offsets per partition); the scores and
    the futures collected in ``writes``."""
    next_offset = [0] * partitions
    items = []
    for i, row in enumerate(rows):
        p = partition_of(row["card_id"], partitions)
        tx = Transaction(**to_transaction(row, f"tx-{i}", 0.0, with_label))
        items.append(Item(tx, tx.transaction_id.encode(), p, next_offset[p]))
        next_offset[p] += 1
    return run_items(scorer, items), items


def run_items(scorer, items):
    async def run():
        writes = []
        scores = [s async for chunk in scorer.scored(await scorer.submit(items), writes=writes) for _, s in chunk]
        await asyncio.gather(*[w for w in writes if asyncio.isfuture(w)])
        scorer.after_batch({item.partition for item in items})
        return scores, writes
    return asyncio.run(run())


def pending_x(scorer, tx_id: str) -> dict:
    return decode_pending(scorer.pending_table.data[tx_id.encode()]).x


@pytest.mark.parametrize("partitions", [1, 4])
def test_the_model_input_is_the_pure_drivers_whatever_the_partitions(rows, partitions):
    scorer = make_scorer()
    (scores, _), _ = score_rows(scorer, rows, partitions)
    assert all(isinstance(s, dict) for s in scores)
    driver = StreamFeatures(features(), raw_names=RAW)
    expected = [driver.transaction(row) for row in rows]
    got = [pending_x(scorer, f"tx-{i}") for i in range(len(rows))]
    assert got == expected
    assert any(x["CUSTOMER_ID_NB_TX_7DAY_WINDOW"] > 3 for x in got)  # the windows do count
    assert sum(scorer.windows.card_count(p) for p in range(partitions)) == len({r["card_id"] for r in rows})


def test_a_transaction_read_again_is_not_counted_twice(rows):
    cards = ChangelogTable()
    scorer = make_scorer(cards=cards)
    batch = rows[:200]
    _, items = score_rows(scorer, batch, 1)
    written = len(cards.written)
    states = dict(cards.data)
    # a new owner (a restart), the table as it was: the same items again (read back)
    again = make_scorer(cards=cards, pending=ChangelogTable())
    (scores, writes), _ = run_items(again, items), None
    assert len(cards.written) == written and cards.data == states  # nothing new written
    driver = StreamFeatures(features(), raw_names=RAW)
    for row in batch:
        driver.transaction(row)
    assert {key: decode_card(blob)[1]["panes"] for key, blob in cards.data.items()} == \
        {card.encode(): state["panes"] for card, state in driver.cards.items()}


def test_card_writes_are_handed_to_the_caller_with_the_scores(rows):
    class Confirmed(ChangelogTable):
        def send_changelog(self, partition, key, value, **kwargs):
            super().send_changelog(partition, key, value)
            return ("confirmation", key)

    scorer = make_scorer(cards=Confirmed())
    (_, writes), _ = score_rows(scorer, rows[:50], 2)
    assert sorted(w for w in writes if isinstance(w, tuple)) == \
        sorted(("confirmation", row["card_id"].encode()) for row in rows[:50])


def test_labels_reach_their_terminal_once(rows):
    send = Sent()
    scorer = make_scorer(send=send)
    batch = rows[:100]
    score_rows(scorer, batch, 2, with_label=True)  # labels in the events
    assert [(key, json.loads(value)["src"]) for key, value in send.sent[:1]] == \
        [(batch[0]["terminal_id"].encode(), f"t:{partition_of(batch[0]['card_id'], 2)}")]
    assert len(send.sent) == len(batch)
    terminals = ChangelogTable()
    writer = TerminalLabels(features(), terminals)
    for key, value in send.sent + send.sent[:10]:  # ten sent twice (a crash before the batch was acknowledged)
        writer.apply(key, value, partition=0)
    driver = StreamFeatures(features(), raw_names=RAW)
    for row in batch:
        driver.label(row["terminal_id"], row["event_time"], row["Class"])
    assert {key: json.loads(blob)["w"] for key, blob in terminals.data.items()} == \
        {t.encode(): state for t, state in driver.terminals.items()}


def test_a_late_label_goes_to_the_terminal_its_pending_entry_names(rows):
    send = Sent()
    scorer = make_scorer(send=send)
    row = rows[0]
    score_rows(scorer, [row], 1)
    assert send.sent == []

    async def label():
        writes = []
        outcome, op = await scorer.plan_label(b"tx-0", 1, 0, offset=5, writes=writes)
        await scorer.learn([(0, op, None)])
        return outcome, writes
    outcome, writes = asyncio.run(label())
    assert outcome == "learned" and len(writes) == 1
    (key, value), = send.sent
    assert key == row["terminal_id"].encode()
    assert json.loads(value) == {"t": row["event_time"], "y": 1, "src": "l:0", "o": 5}


def test_terminal_windows_are_read_from_the_terminal_table(rows):
    terminals = ChangelogTable()
    writer = TerminalLabels(features(), terminals)
    late = rows[-1]
    for day in range(1, 9):  # labels of the terminal's transactions 1..8 days before the first's window ends
        value = json.dumps({"t": late["event_time"] - (6 + day) * 86400.0, "y": day % 2, "src": "t:0", "o": day})
        writer.apply(late["terminal_id"].encode(), value.encode(), partition=0)
    scorer = make_scorer(terminals=terminals)
    score_rows(scorer, [late], 1)
    x = pending_x(scorer, "tx-0")
    assert x["TERMINAL_ID_NB_TX_7DAY_WINDOW"] > 0
    assert x == {**x, **features().terminal(json.loads(terminals.data[late["terminal_id"].encode()])["w"],
                                            late["event_time"])}


def test_idle_cards_are_deleted_from_the_table(rows):
    cards = ChangelogTable()
    scorer = make_scorer(cards=cards)
    first = rows[0]
    score_rows(scorer, [first], 1)
    assert first["card_id"].encode() in cards.data
    later = dict(first, card_id="cust-other", event_time=first["event_time"] + 31 * 86400.0)
    run_items(scorer, [Item(Transaction(**to_transaction(later, "tx-later", 0.0, False)), b"tx-later", 0, 1)])
    assert first["card_id"].encode() not in cards.data
    assert cards.written[-1] == (0, first["card_id"].encode(), None)  # its tombstone
    assert b"cust-other" in cards.data


def test_a_transaction_without_ids_keeps_its_raw_input(rows):
    scorer = make_scorer()
    before = metrics.WINDOW_IDS_MISSING.labels(id="card")._value.get()
    row = {k: v for k, v in rows[0].items() if k not in ("card_id", "terminal_id")}
    tx = Transaction(**to_transaction(row, "tx-bare", 0.0, False))
    (scores, _) = run_items(scorer, [Item(tx, b"tx-bare", 0, 0)])
    assert isinstance(scores[0], dict)
    assert pending_x(scorer, "tx-bare") == {"Amount": row["Amount"]}
    assert metrics.WINDOW_IDS_MISSING.labels(id="card")._value.get() == before + 1


def test_a_new_owner_restores_the_cards_from_the_table(rows):
    cards = ChangelogTable()
    first = make_scorer(cards=cards)
    score_rows(first, rows[:100], 2)
    second = make_scorer(cards=cards)
    rest = rows[100:200]
    # the second scorer takes the stream on (offsets after the first's)
    next_offset = [0, 0]
    for row in rows[:100]:
        next_offset[partition_of(row["card_id"], 2)] += 1
    items = []
    for i, row in enumerate(rest, start=100):
        p = partition_of(row["card_id"], 2)
        tx = Transaction(**to_transaction(row, f"tx-{i}", 0.0, False))
        items.append(Item(tx, tx.transaction_id.encode(), p, next_offset[p]))
        next_offset[p] += 1
    run_items(second, items)
    driver = StreamFeatures(features(), raw_names=RAW)
    expected = [driver.transaction(row) for row in rows[:200]][100:]
    assert [pending_x(second, f"tx-{i}") for i in range(100, 200)] == expected


def test_cards_written_as_json_are_restored_and_rewritten_packed(rows):
    """A card table written by a build that stored JSON (``[partition, state]``) is read by a new
    owner; the cards it updates are written in the packed format, with the same state."""
    cards = ChangelogTable()
    first = make_scorer(cards=cards)
    score_rows(first, rows[:100], 1)
    packed = dict(cards.data)
    cards.data = {key: json.dumps(list(decode_card(blob)), separators=(",", ":")).encode()
                  for key, blob in packed.items()}
    second = make_scorer(cards=cards)
    second.windows.opened(0)
    assert second.windows.card_count(0) == len(packed)
    items = []
    for i, row in enumerate(rows[100:200], start=100):
        tx = Transaction(**to_transaction(row, f"tx-{i}", 0.0, False))
        items.append(Item(tx, tx.transaction_id.encode(), 0, i))
    run_items(second, items)
    driver = StreamFeatures(features(), raw_names=RAW)
    expected = [driver.transaction(row) for row in rows[:200]][100:]
    assert [pending_x(second, f"tx-{i}") for i in range(100, 200)] == expected
    touched = {row["card_id"].encode() for row in rows[100:200]}
    assert all(cards.data[key][:1] != b"[" for key in touched)  # rewritten packed
    assert {key: decode_card(blob)[1]["panes"] for key, blob in cards.data.items()} == \
        {card.encode(): state["panes"] for card, state in driver.cards.items()}


def _warm_start(tmp_path, meta: dict) -> str:
    from app.learning import OnlineLearner

    learner = OnlineLearner(configured.model_factory(settings, kind="lr"))
    learner.meta = meta
    path = str(tmp_path / "warm.ckpt")
    learner.save(path)
    return path


def test_a_warm_start_model_is_served_the_input_it_learned_or_refused(tmp_path):
    import types

    from app.backfill.warm_start import model_input_meta
    from app.service import check_warm_start_features

    tf = features()
    with_windows = _warm_start(tmp_path, {"model_input": model_input_meta(True)})
    on = types.SimpleNamespace(**{**vars(settings), "WARM_START_PATH": with_windows, "WINDOW_FEATURES": True})
    check_warm_start_features(on, tf)  # the same features: served
    off = types.SimpleNamespace(**{**vars(on), "WINDOW_FEATURES": False})
    with pytest.raises(ValueError, match="window_features, window_params"):
        check_warm_start_features(off, tf)
    other_days = types.SimpleNamespace(**{**vars(on), "CARD_WINDOW_DAYS": [1, 7]})
    with pytest.raises(ValueError, match="window_features"):
        check_warm_start_features(other_days, configured.transaction_features(other_days))
    raw_only = _warm_start(tmp_path, {"model_input": model_input_meta(False)})
    check_warm_start_features(types.SimpleNamespace(**{**vars(off), "WARM_START_PATH": raw_only}), tf)
    with pytest.raises(ValueError, match="learned other input"):
        check_warm_start_features(types.SimpleNamespace(**{**vars(on), "WARM_START_PATH": raw_only}), tf)


RATIOS = [f"CUSTOMER_ID_AMOUNT_OVER_AVG_{k}DAY_WINDOW" for k in (1, 7, 30)]


def worker_settings(**changed):
    """The settings with some changed, no warm-start model unless one is given."""
    import types

    return types.SimpleNamespace(**{**vars(settings), "WARM_START_PATH": "", **changed})


def with_a_card_seen(windows, card_id: str, event_time: float, amount: float) -> None:
    """Put in ``windows``' card table a card that spent ``amount`` at ``event_time``."""
    from app.features import TransactionFeatures
    from app.scoring.windows import encode_card

    state, _ = TransactionFeatures().card(None, event_time, amount, offset=0)
    windows.card_table.data[card_id.encode()] = encode_card(0, state)


def transaction_row(event_time: float) -> dict:
    """A transaction's fields at ``event_time`` (no ids)."""
    from app.data.synthetic import generate

    return {**to_transaction(generate(1, seed=1)[0], "tx-1", event_time, False), "card_id": None, "terminal_id": None}


@pytest.mark.parametrize("ratios", [True, False])
def test_the_workers_scoring_windows_take_the_amount_ratios_setting(ratios):
    """``CARD_AMOUNT_RATIOS`` reaches the windows the worker gives its scorer
    (:func:`app.service.scoring_windows`): with it, a transaction with a card id gets its amount over
    the card's mean amount in each window; without it, the Handbook's windows alone."""
    from app import service
    from tests.fakes import agent_app

    windows = service.scoring_windows(agent_app("ratios"), worker_settings(CARD_AMOUNT_RATIOS=ratios))
    assert [n for n in windows.names if "OVER_AVG" in n] == (RATIOS if ratios else [])
    t = 1_700_000_000.0
    with_a_card_seen(windows, "card-1", t - 3600, 10.0)
    tx = Transaction(**{**transaction_row(t), "card_id": "card-1", "Amount": 30.0})
    x = windows.preview(tx, {"Amount": 30.0}, 0)
    assert x["CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW"] == 20.0  # the card's 10 and this 30
    assert {n: x.get(n) for n in RATIOS} == ({n: 1.5 for n in RATIOS} if ratios else {n: None for n in RATIOS})
    no_card = windows.preview(Transaction(**{**transaction_row(t), "card_id": "", "terminal_id": "t-1"}),
                              {"Amount": 30.0}, 0)
    assert "TX_DURING_NIGHT" in no_card and not any(n in no_card for n in RATIOS)  # no card id: no card features


@pytest.mark.parametrize("trained_with", [True, False])
def test_a_warm_start_model_is_served_only_with_the_amount_ratios_it_learned(tmp_path, monkeypatch, trained_with):
    """The Spark warm start records whether its windows had the ratios; the worker serves the model
    with the same ``CARD_AMOUNT_RATIOS`` and refuses to start with the other."""
    from app import service
    from app.backfill.warm_start import model_input_meta
    from tests.fakes import agent_app

    monkeypatch.setattr(settings, "CARD_AMOUNT_RATIOS", trained_with)
    meta = model_input_meta(True)
    assert [n for n in meta["window_features"] if "OVER_AVG" in n] == (RATIOS if trained_with else [])
    path = _warm_start(tmp_path, {"model_input": meta})
    same = worker_settings(WINDOW_FEATURES=True, WARM_START_PATH=path, CARD_AMOUNT_RATIOS=trained_with)
    assert service.scoring_windows(agent_app("served"), same).names == tuple(meta["window_features"])
    other = worker_settings(WINDOW_FEATURES=True, WARM_START_PATH=path, CARD_AMOUNT_RATIOS=not trained_with)
    with pytest.raises(ValueError, match="window_features, window_params"):
        service.scoring_windows(agent_app("refused"), other)
