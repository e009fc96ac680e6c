import pytest

from app.data.simulator import SimulatorConfig, simulate
from app.features import StreamFeatures, TransactionFeatures, merged


def test_merged_puts_labels_after_transactions_of_the_same_instant():
    rows = [{"event_time": 0.0, "Class": 1}, {"event_time": 10.0, "Class": 0}]
    assert [(k, r["event_time"]) for k, r in merged(rows, 10)] == [
        ("transaction", 0.0), ("transaction", 10.0), ("label", 0.0), ("label", 10.0)]
    assert [(k, r["event_time"]) for k, r in merged(rows, 0)] == [
        ("transaction", 0.0), ("label", 0.0), ("transaction", 10.0), ("label", 10.0)]
    with pytest.raises(ValueError):
        list(merged(rows[::-1], 1))


def test_no_terminal_feature_sees_a_label_received_after_the_score():
    sim = simulate(SimulatorConfig(n_customers=60, n_terminals=80, n_days=40), seed=2)
    rows = list(sim.rows())
    delay = 7 * 86400
    sf = StreamFeatures(TransactionFeatures(terminal_delay_s=delay))
    received = {}  # terminal -> [(tx time, label)] in the order received
    for kind, row in merged(rows, delay):
        if kind == "label":
            received.setdefault(row["terminal_id"], []).append(row)
            sf.label(row["terminal_id"], row["event_time"], row["Class"])
            continue
        x = sf.transaction(row)
        t = row["event_time"]
        for k in (1, 7, 30):
            # labels received strictly before t (at t, the transaction comes first), in the window
            inside = [r for r in received.get(row["terminal_id"], []) if r["event_time"] + delay < t]
            end = (t - delay) // 86400
            inside = [r for r in inside if end - k + 1 <= r["event_time"] // 86400 <= end]
            assert x[f"TERMINAL_ID_NB_TX_{k}DAY_WINDOW"] == len(inside)
    assert sf.without_card == sf.without_terminal == 0
    assert len(sf.cards) <= 60


def test_counts_transactions_without_ids():
    sf = StreamFeatures(TransactionFeatures())
    x = sf.transaction({"event_time": 0.0, "Amount": 1.0, "card_id": None, "terminal_id": None})
    assert x == {"Amount": 1.0}  # neither id: the raw input as it is, no calendar flags either
    sf.label(None, 0.0, 1)
    assert sf.without_card == sf.without_terminal == 1 and sf.terminals == {}
