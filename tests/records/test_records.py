"""Records: the .avsc files match the models, and values survive an Avro round trip."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import fastavro
import pytest

import settings
from app.records import ALL_RECORDS, FEATURE_NAMES, Transaction
from app.records.__main__ import main as write_schemas, schema_path
from app.records.transaction import V_NAMES, model_features

ROOT = Path(__file__).resolve().parents[2]
#: schemas/transaction.avsc before terminal_id and fraud_scenario were added.
PREVIOUS = json.loads((Path(__file__).parent / "previous_schemas" / "transaction-1.avsc").read_text())


@pytest.mark.parametrize("record", ALL_RECORDS, ids=lambda r: r.__name__)
def test_avsc_file_matches_the_model(record):
    path = schema_path(record)
    assert path.exists(), f"{path} missing: run python -m app.records"
    assert json.loads(path.read_text()) == record.avro_schema_to_python(), f"{path} is stale: run python -m app.records"


def test_check_mode_reports_no_drift():
    assert write_schemas(["--check"]) == 0


def test_transaction_fields_and_features():
    names = [f["name"] for f in Transaction.avro_schema_to_python()["fields"]]
    assert names[:3] == ["transaction_id", "event_time", "Amount"]
    assert tuple(names[3:31]) == V_NAMES
    assert names[31:] == ["Class", "card_id", "merchant_id", "terminal_id", "fraud_scenario"]
    tx = Transaction(transaction_id="t", event_time=0.0, **{n: float(i) for i, n in enumerate(FEATURE_NAMES)})
    assert list(tx.features()) == list(FEATURE_NAMES) == settings.MODEL_FEATURES
    assert tx.features()["Amount"] == 28.0


def test_v_columns_are_required_and_new_ids_default_to_none():
    with pytest.raises(TypeError, match="V1"):
        Transaction(transaction_id="t", event_time=5.0, Amount=12.0)
    tx = Transaction(transaction_id="t", event_time=5.0, Amount=12.0, **{n: 0.0 for n in V_NAMES})
    assert tx.terminal_id is None and tx.fraud_scenario is None and tx.Class is None


def test_model_features_follow_the_names_and_skip_none():
    value = {"transaction_id": "t", "event_time": 1.0, "Amount": 7.5, **{n: 0.0 for n in V_NAMES}, "V3": -2.0,
             "Class": None, **{n: None for n in ("card_id", "merchant_id", "terminal_id", "fraud_scenario")}}
    assert model_features(value, ["V3", "Amount"]) == {"V3": -2.0, "Amount": 7.5}
    assert list(model_features(Transaction(**value), ["Amount", "V3"])) == ["Amount", "V3"]
    assert model_features({"Amount": None}, ["Amount"]) == {}


@pytest.mark.parametrize("name", ["Class", "fraud_scenario", "event_time", "card_id", "terminal_id", "V29"])
def test_model_features_refuse_labels_clock_ids_and_unknown_names(name):
    with pytest.raises(ValueError, match=name):
        model_features({"Amount": 1.0}, ["Amount", name])


def test_model_features_setting_comes_from_the_environment():
    env = {**os.environ, "FRAUD_MODEL_FEATURES": "Amount, V4"}
    out = subprocess.run([sys.executable, "-c", "import settings; print(settings.MODEL_FEATURES)"],
                         env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "['Amount', 'V4']"


def _write(schema: dict, value: dict) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), value)
    return buf.getvalue()


def _read(data: bytes, writer: dict, reader: dict) -> dict:
    return fastavro.schemaless_reader(io.BytesIO(data), fastavro.parse_schema(writer), fastavro.parse_schema(reader))


def test_previous_and_current_schemas_read_each_other():
    current = Transaction.avro_schema_to_python()
    old_value = {"transaction_id": "ulb-1", "event_time": 3.0, "Amount": 9.5, "Class": 0, "card_id": None,
                 "merchant_id": None, **{n: i / 10 for i, n in enumerate(V_NAMES)}}
    as_new = _read(_write(PREVIOUS, old_value), PREVIOUS, current)
    assert as_new == {**old_value, "terminal_id": None, "fraud_scenario": None}
    # a simulator transaction carries 0.0 in the V columns (they are required) and its new ids
    sim_value = {"transaction_id": "sim-1", "event_time": 1_522_540_900.0, "Amount": 57.19, "Class": 1,
                 "card_id": "cust-000001", "merchant_id": None, "terminal_id": "term-000002", "fraud_scenario": 2,
                 **{n: 0.0 for n in V_NAMES}}
    as_old = _read(_write(current, sim_value), current, PREVIOUS)
    assert as_old == {k: v for k, v in sim_value.items() if k not in ("terminal_id", "fraud_scenario")}
    # leaving a V column out is not a transaction: the writer refuses it
    with pytest.raises(ValueError, match="V1"):
        _write(current, {k: v for k, v in sim_value.items() if k != "V1"})


@pytest.mark.parametrize("record", ALL_RECORDS, ids=lambda r: r.__name__)
def test_fake_values_round_trip_through_avro(record):
    schema = fastavro.parse_schema(record.avro_schema_to_python())
    value = record.fake().to_representation()
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, value)
    buf.seek(0)
    back = fastavro.schemaless_reader(buf, schema)
    assert back == {k: value[k] for k in back}


def test_a_drift_alert_without_a_description_reads_as_one_with_none_and_back():
    """The description is optional with a null default: alerts written before it read with the
    current schema, and current ones with the previous (what FULL_TRANSITIVE asks of the registry)."""
    from app.records import DriftAlert

    current = DriftAlert.avro_schema_to_python()
    field, = [f for f in current["fields"] if f["name"] == "description"]
    assert field["type"] == ["null", "string"] and field["default"] is None
    previous = {**current, "fields": [f for f in current["fields"] if f["name"] != "description"]}
    old = {"detector": "ADWIN(delta=0.002,clock=32)", "stream": "score", "event_time": 1.0, "position": 10,
           "mean_before": 0.1, "mean_after": 0.5, "width": 4, "mitigation": "none", "model_version": "m",
           "processing_time": 2.0, "transaction_id": "t-9", "partition": 0, "offset": 9}
    assert _read(_write(previous, old), previous, current) == {**old, "description": None}
    new = {**old, "description": "the fraud score's mean rose from 0.1 to 0.5 over the last 4 scores on partition 0"}
    assert _read(_write(current, new), current, previous) == old
