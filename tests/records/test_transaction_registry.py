"""The Transaction schema's evolution, checked by the real registry (``settings.SCHEMA_REGISTRY_URL``;
``infra/stack.sh start``): the current schema (terminal id and fraud scenario optional, V1..V28
required) is accepted after the previous one under BACKWARD, FORWARD_TRANSITIVE and FULL_TRANSITIVE, so old and
new producers and consumers keep reading each other. Each test uses a subject of its own."""
from __future__ import annotations

import copy

import pytest

from app.records import Transaction
from app.serialization import SchemaRefused, make_registry_client
from app.serialization.registry import register_schema
from tests.records.conftest import REGISTRY, assert_accepted_after
from tests.records.test_records import PREVIOUS


@pytest.mark.parametrize("level", ["BACKWARD", "FORWARD_TRANSITIVE", "FULL_TRANSITIVE"])
def test_current_schema_is_accepted_after_the_previous_one(topic, level):
    assert_accepted_after(topic, PREVIOUS, Transaction.avro_schema_to_python(), level)


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
