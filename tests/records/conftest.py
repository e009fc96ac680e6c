"""A subject of the real schema registry for one test (``settings.SCHEMA_REGISTRY_URL``;
``infra/stack.sh start``), and the check the records' evolution tests make with it."""
from __future__ import annotations

import uuid

import pytest

import settings
from app.serialization import make_registry_client
from app.serialization.registry import register_schema, subject_for

REGISTRY = settings.SCHEMA_REGISTRY_URL


@pytest.fixture
def topic(request):
    """A subject of this test's own, deleted at the end (the test is skipped without a registry)."""
    try:
        make_registry_client(REGISTRY, timeout=3.0).get_subjects()
    except Exception as exc:  # noqa: BLE001 - connection refused, timeouts
        pytest.skip(f"no schema registry at {REGISTRY} (infra/stack.sh start): {exc}")
    name = f"evolution-{request.module.__name__.rsplit('.', 1)[-1]}-{uuid.uuid4().hex[:8]}"
    yield name
    try:
        make_registry_client(REGISTRY).delete_subject(subject_for(name))
    except Exception:  # noqa: BLE001 - nothing to clean when the subject was never made
        pass


def assert_accepted_after(topic: str, previous: dict, current: dict, level: str) -> None:
    """The registry, set to ``level``, takes ``current`` as the next version after ``previous``."""
    client = make_registry_client(REGISTRY)
    first = register_schema(client, topic, previous, compatibility=level)
    assert client.get_compatibility(subject_for(topic)) == level
    assert client.test_compatibility(subject_for(topic), current) is True
    assert register_schema(client, topic, current) != first
    assert len(client.get_versions(subject_for(topic))) == 2
