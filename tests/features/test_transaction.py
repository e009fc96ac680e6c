import pytest

from app.features import TransactionFeatures
from app.features.calendar import calendar_features


def test_names_and_order():
    tf = TransactionFeatures()
    assert len(tf.names) == 6 + 6 + 2
    assert tf.names[:2] == ("CUSTOMER_ID_NB_TX_1DAY_WINDOW", "CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW")
    assert tf.names[-2:] == ("TX_DURING_WEEKEND", "TX_DURING_NIGHT")
    x, _ = tf.for_transaction({"Amount": 1.0}, None, None, event_time=1e9, card_id="c", terminal_id="t")
    assert list(x) == ["Amount", *tf.names]
    assert TransactionFeatures(calendar=False).names[-1] == "TERMINAL_ID_RISK_30DAY_WINDOW"


def test_ids_missing_leave_their_features_out():
    tf = TransactionFeatures()
    x, card = tf.for_transaction({"Amount": 3.0}, None, None, event_time=1e9, card_id="", terminal_id="t")
    assert card is None
    assert not any(n.startswith("CUSTOMER_ID") for n in x)
    assert x["TERMINAL_ID_NB_TX_7DAY_WINDOW"] == 0.0
    x, card = tf.for_transaction({"Amount": 3.0}, None, None, event_time=1e9, card_id="c", terminal_id=None)
    assert card is not None and not any(n.startswith("TERMINAL_ID") for n in x)


def test_parts_compose_to_the_whole():
    tf = TransactionFeatures(terminal_delay_s=86400)
    terminal = tf.label(None, 1e9 - 2 * 86400, 1)
    state, card_feats = tf.card({"offset": None, "panes": []}, 1e9, 12.0, offset=3)
    whole, new = tf.for_transaction({"Amount": 12.0}, None, terminal, 3, event_time=1e9, card_id="c", terminal_id="t")
    assert new == state
    assert whole == {"Amount": 12.0, **card_feats, **tf.terminal(terminal, 1e9), **calendar_features(1e9)}


def test_amount_defaults_to_the_raw_amount_and_can_be_given():
    tf = TransactionFeatures()
    x, _ = tf.for_transaction({"Amount": 5.0}, None, None, event_time=0.0, card_id="c", terminal_id=None)
    assert x["CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW"] == 5.0
    x, _ = tf.for_transaction({}, None, None, event_time=0.0, card_id="c", terminal_id=None, amount=7.0)
    assert x["CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW"] == 7.0
    with pytest.raises(KeyError):
        tf.for_transaction({}, None, None, event_time=0.0, card_id="c", terminal_id=None)


def test_params_round_trip():
    tf = TransactionFeatures(card_days=(1, 2), terminal_days=(3,), terminal_delay_s=3600, card_hop_s=1800,
                             terminal_hop_s=3600, calendar=False, night_until_hour=5)
    again = TransactionFeatures(**tf.params())
    assert again.names == tf.names and again.params() == tf.params()


def test_amount_ratios_come_with_the_card_features_and_their_parameters():
    tf = TransactionFeatures(card_days=(1, 30), amount_ratios=True)
    assert tf.names[:6] == ("CUSTOMER_ID_NB_TX_1DAY_WINDOW", "CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW",
                            "CUSTOMER_ID_NB_TX_30DAY_WINDOW", "CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW",
                            "CUSTOMER_ID_AMOUNT_OVER_AVG_1DAY_WINDOW", "CUSTOMER_ID_AMOUNT_OVER_AVG_30DAY_WINDOW")
    card, _ = tf.card(None, 1e9, 10.0)
    x, _ = tf.for_transaction({"Amount": 40.0}, card, None, event_time=1e9 + 60, card_id="c", terminal_id="t")
    assert list(x) == ["Amount", *tf.names]
    assert x["CUSTOMER_ID_AMOUNT_OVER_AVG_30DAY_WINDOW"] == 40.0 / 25.0
    x, _ = tf.for_transaction({"Amount": 40.0}, card, None, event_time=1e9 + 60, card_id="", terminal_id="t")
    assert not any(n.startswith("CUSTOMER_ID") for n in x)  # no card: no ratios either
    again = TransactionFeatures(**tf.params())
    assert again.names == tf.names and again.params() == tf.params()
    assert TransactionFeatures().params() == {k: v for k, v in tf.params().items() if k != "amount_ratios"} | {
        "card_days": [1, 7, 30]}
