"""The Score schema's evolution: ``members`` and ``top_features`` are optional with null defaults, so
scores written before them read with the current schema and the current scores read with the previous
one (fastavro), and the real registry (``settings.SCHEMA_REGISTRY_URL``; ``infra/stack.sh start``)
accepts the current schema after the previous one under BACKWARD, FORWARD_TRANSITIVE and
FULL_TRANSITIVE. Each registry test uses a subject of its own."""
from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import fastavro
import pytest

from app.records import Score
from app.serialization import SchemaRefused, make_registry_client
from app.serialization.registry import register_schema
from tests.records.conftest import REGISTRY, assert_accepted_after

#: schemas/score.avsc before members and top_features were added.
PREVIOUS = json.loads((Path(__file__).parent / "previous_schemas" / "score-1.avsc").read_text())
SCORE = {"transaction_id": "t-1", "event_time": 1.0, "fraud_probability": 0.25, "decision": False,
         "threshold": 0.5, "model_version": "arf10+lr-g0", "events_learned": 7, "processing_time": 2.0,
         "anomaly_score": None, "label": 0, "partition": 1, "offset": 9}


def _roundtrip(value: dict, writer: dict, reader: dict) -> dict:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(writer), value)
    buf.seek(0)
    return fastavro.schemaless_reader(buf, fastavro.parse_schema(writer), fastavro.parse_schema(reader))


def test_a_previous_score_reads_with_null_explanations():
    read = _roundtrip(SCORE, PREVIOUS, Score.avro_schema_to_python())
    assert read == {**SCORE, "members": None, "top_features": None}


def test_an_explained_score_reads_with_the_previous_schema_without_them():
    explained = {**SCORE, "members": {"arf": 0.1, "lr": 0.3, "lr_pos10": 0.35},
                 "top_features": [{"name": "V14", "contribution": -2.5}, {"name": "V4", "contribution": 1.25},
                                  {"name": "Amount", "contribution": 0.5}]}
    assert _roundtrip(explained, Score.avro_schema_to_python(), Score.avro_schema_to_python()) == explained
    assert _roundtrip(explained, Score.avro_schema_to_python(), PREVIOUS) == SCORE


def test_a_score_record_with_explanations_writes_as_plain_data():
    """A decoded score (its top features become records) encodes again."""
    explained = {**SCORE, "members": {"lr": 0.3}, "top_features": [{"name": "V14", "contribution": -2.5}]}
    value = Score(**explained).to_representation()
    assert value == explained
    assert _roundtrip(value, Score.avro_schema_to_python(), Score.avro_schema_to_python()) == explained


def test_the_previous_schema_is_the_current_one_without_the_explanations():
    current = Score.avro_schema_to_python()
    names = [f["name"] for f in current["fields"]]
    assert names == [f["name"] for f in PREVIOUS["fields"]] + ["members", "top_features"]
    for field in current["fields"][-2:]:
        assert field["type"][0] == "null" and field["default"] is None


@pytest.mark.parametrize("level", ["BACKWARD", "FORWARD_TRANSITIVE", "FULL_TRANSITIVE"])
def test_current_score_schema_is_accepted_after_the_previous_one(topic, level):
    assert_accepted_after(topic, PREVIOUS, Score.avro_schema_to_python(), level)


def test_explanations_without_a_default_would_be_refused_under_full_transitive(topic):
    """Why the new fields default to null: old scores, without them, could not be read otherwise."""
    client = make_registry_client(REGISTRY)
    register_schema(client, topic, PREVIOUS, compatibility="FULL_TRANSITIVE")
    required = copy.deepcopy(Score.avro_schema_to_python())
    for field in required["fields"]:
        if field["name"] == "members":
            field["type"] = field["type"][1]
            del field["default"]
    with pytest.raises(SchemaRefused) as info:
        register_schema(client, topic, required)
    assert info.value.http_code == 409
