"""The Transaction schema's evolution, checked by the real registry (``settings.SCHEMA_REGISTRY_URL``;
``infra/stack.sh start``): the current schema (terminal id, fraud scenario, V1..V28 with 0.0 defaults)
is accepted after the previous one under BACKWARD, FORWARD_TRANSITIVE and FULL_TRANSITIVE, so old and
new producers and consumers keep reading each other. Each test uses a subject of its own."""
from __future__ import annotations

import copy
import uuid

import pytest

import settings
from app.records import Transaction
from app.serialization import SchemaRefused, make_registry_client
from app.serialization.registry import register_schema, subject_for
from tests.records.test_records import PREVIOUS

REGISTRY = settings.SCHEMA_REGISTRY_URL


@pytest.fixture
def topic():
    """A subject of this test's own, deleted at the end (the test is skipped without a registry)."""
    try:
        make_registry_client(REGISTRY, timeout=3.0).get_subjects()
    except Exception as exc:  # noqa: BLE001 - connection refused, timeouts
        pytest.skip(f"no schema registry at {REGISTRY} (infra/stack.sh start): {exc}")
    name = f"schema-evolution-{uuid.uuid4().hex[:8]}"
    yield name
    try:
        make_registry_client(REGISTRY).delete_subject(subject_for(name))
    except Exception:  # noqa: BLE001 - nothing to clean when the subject was never made
        pass


@pytest.mark.parametrize("level", ["BACKWARD", "FORWARD_TRANSITIVE", "FULL_TRANSITIVE"])
def test_current_schema_is_accepted_after_the_previous_one(topic, level):
    client = make_registry_client(REGISTRY)
    first = register_schema(client, topic, PREVIOUS, compatibility=level)
    assert client.get_compatibility(subject_for(topic)) == level
    current = Transaction.avro_schema_to_python()
    assert client.test_compatibility(subject_for(topic), current) is True
    second = register_schema(client, topic, current)
    assert second != first
    versions = client.get_versions(subject_for(topic))
    assert len(versions) == 2


def test_null_v_columns_would_be_refused_under_forward_transitive(topic):
    """Why V1..V28 stay doubles: a union with null there is not readable by the previous schema."""
    client = make_registry_client(REGISTRY)
    register_schema(client, topic, PREVIOUS, compatibility="FORWARD_TRANSITIVE")
    nullable = copy.deepcopy(Transaction.avro_schema_to_python())
    for field in nullable["fields"]:
        if field["name"] in ("V1", "V2"):
            field["type"], field["default"] = ["null", "double"], None
    with pytest.raises(SchemaRefused) as info:
        register_schema(client, topic, nullable)
    assert info.value.http_code == 409
