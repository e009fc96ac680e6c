import math

import pytest

from app.learning.examples import Example, ExampleFormatError, decode, encode


def example(**changes) -> Example:
    fields = dict(transaction_id="tx-000000042", event_time=1_700_000_000.125,
                  features={"Amount": 149.62, "V1": -1.3598071336738, "CUSTOMER_ID_NB_TX_1DAY_WINDOW": 3},
                  label=0, source=("transactions", 5, 1234))
    fields.update(changes)
    return Example(**fields)


def test_round_trip_is_exact():
    original = example(features={"a": 0.1 + 0.2, "b": 1e-300, "c": -0.0, "d": 7, "e": 2.0 ** 60 + 0.5})
    back = decode(encode(original))
    assert back == original
    assert all(type(back.features[name]) is type(value) for name, value in original.features.items())
    assert math.copysign(1.0, back.features["c"]) == -1.0
    assert back.source == ("transactions", 5, 1234) and isinstance(back.source, tuple)


def test_nan_and_infinities_round_trip():
    back = decode(encode(example(features={"nan": float("nan"), "inf": float("inf"), "ninf": float("-inf")})))
    assert math.isnan(back.features["nan"])
    assert back.features["inf"] == float("inf") and back.features["ninf"] == float("-inf")


def test_unicode_transaction_id_and_key():
    original = example(transaction_id="tx-é")
    assert decode(encode(original)).transaction_id == "tx-é"
    assert original.key == "tx-é".encode()


def test_not_a_pickle():
    blob = encode(example())
    assert blob.startswith(b"FEX1[")
    assert b"\x80" not in blob[:6]


@pytest.mark.parametrize("blob, reason", [
    (b"", "bad_header"),
    (b"FRDL\x80\x05", "bad_header"),
    (b"FEX1{not json", "unreadable"),
    (b"FEX1\xff\xfe", "unreadable"),
    (b'FEX1["tx", 0.0, {}, 1]', "wrong_shape"),
    (b'FEX1[1, 0.0, {}, 1, ["t", 0, 0]]', "wrong_shape"),
    (b'FEX1["tx", "now", {}, 1, ["t", 0, 0]]', "wrong_shape"),
    (b'FEX1["tx", 0.0, {"a": "x"}, 1, ["t", 0, 0]]', "wrong_shape"),
    (b'FEX1["tx", 0.0, {"a": null}, 1, ["t", 0, 0]]', "wrong_shape"),
    (b'FEX1["tx", 0.0, [], 1, ["t", 0, 0]]', "wrong_shape"),
    (b'FEX1["tx", 0.0, {}, true, ["t", 0, 0]]', "wrong_shape"),
    (b'FEX1["tx", 0.0, {}, 1.0, ["t", 0, 0]]', "wrong_shape"),
    (b'FEX1["tx", 0.0, {}, 1, ["t", 0]]', "wrong_shape"),
    (b'FEX1["tx", 0.0, {}, 1, ["t", 0, 1.5]]', "wrong_shape"),
    (b'FEX1["tx", 0.0, {}, 1, [3, 0, 0]]', "wrong_shape"),
])
def test_malformed_bytes_are_refused_with_a_reason(blob, reason):
    with pytest.raises(ExampleFormatError) as caught:
        decode(blob)
    assert caught.value.reason == reason


def test_source_partition_names_topic_and_partition():
    assert example(source=("labels", 7, 0)).source_partition == "labels:7"
