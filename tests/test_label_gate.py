from app.label_gate import LabelGate


def test_labels_due_on_one_transaction_go_together_in_order():
    gate = LabelGate()
    assert gate.hold("tx-5", "a") == [] and gate.hold("tx-5", "b") == []
    assert gate.scored("tx-4") == []
    assert gate.scored("tx-5") == ["a", "b"]
    assert gate.scored("tx-5") == []  # a second score (at least once) releases nothing more
    assert gate.waiting == 0


def test_a_transaction_scored_twice_counts_once_towards_the_end():
    gate = LabelGate()
    gate.hold_to_end("last")
    assert gate.end(2) == []
    assert gate.scored("tx-0") == [] and gate.scored("tx-0") == []
    assert gate.scored_count == 1 and gate.waiting == 1
    assert gate.scored("tx-1") == ["last"]


def test_labels_held_to_the_end_go_at_once_when_everything_is_already_scored():
    gate = LabelGate()
    gate.scored("tx-0")
    gate.hold_to_end("last")
    assert gate.scored_count == 1
    assert gate.end(1) == ["last"]
    assert gate.end(1) == []
