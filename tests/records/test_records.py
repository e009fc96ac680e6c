"""Records: the .avsc files match the models, and values survive an Avro round trip."""
from __future__ import annotations

import io
import json

import fastavro
import pytest

from app.records import ALL_RECORDS, FEATURE_NAMES, Transaction
from app.records.__main__ import main as write_schemas, schema_path


@pytest.mark.parametrize("record", ALL_RECORDS, ids=lambda r: r.__name__)
def test_avsc_file_matches_the_model(record):
    path = schema_path(record)
    assert path.exists(), f"{path} missing: run python -m app.records"
    assert json.loads(path.read_text()) == record.avro_schema_to_python(), f"{path} is stale: run python -m app.records"


def test_check_mode_reports_no_drift():
    assert write_schemas(["--check"]) == 0


def test_transaction_fields_and_features():
    names = [f["name"] for f in Transaction.avro_schema_to_python()["fields"]]
    assert names[:2] == ["transaction_id", "event_time"]
    assert tuple(names[2:31]) == FEATURE_NAMES
    assert names[31:] == ["Class", "card_id", "merchant_id"]
    tx = Transaction(transaction_id="t", event_time=0.0, **{n: float(i) for i, n in enumerate(FEATURE_NAMES)})
    assert list(tx.features()) == list(FEATURE_NAMES)
    assert tx.features()["Amount"] == 28.0


@pytest.mark.parametrize("record", ALL_RECORDS, ids=lambda r: r.__name__)
def test_fake_values_round_trip_through_avro(record):
    schema = fastavro.parse_schema(record.avro_schema_to_python())
    value = record.fake().to_representation()
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, value)
    buf.seek(0)
    back = fastavro.schemaless_reader(buf, schema)
    assert back == {k: value[k] for k in back}
