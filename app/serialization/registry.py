"""Schema registry access through its Confluent-compatible API (Apicurio: ``/apis/ccompat/v7``)."""
from __future__ import annotations

import time
from typing import Any

import httpx

from schema_registry.client import SchemaRegistryClient, schema
from schema_registry.client.errors import ClientError


class SchemaRefused(RuntimeError):
    """The registry would not take a schema (an incompatible change, say); ``reason`` is its word."""

    def __init__(self, subject: str, http_code: int, reason: str) -> None:
        self.subject, self.http_code, self.reason = subject, http_code, reason
        super().__init__(f"the schema registry refused the schema for {subject} (HTTP {http_code}): {reason}")


def _registry_reason(exc: ClientError) -> str:
    text = str(exc.message if hasattr(exc, "message") else exc)
    if exc.server_traceback and isinstance(exc.server_traceback, dict):
        text = exc.server_traceback.get("message", text)
    return text


def subject_for(topic: str) -> str:
    """The registry subject of a topic's values (TopicNameStrategy).

    >>> subject_for("transactions")
    'transactions-value'
    """
    return f"{topic}-value"


def make_registry_client(url: str, auth: tuple[str, str] | None = None, timeout: float = 10.0) -> SchemaRegistryClient:
    """A registry client; ``auth`` is (user, password) for basic auth, by default the
    ``SCHEMA_REGISTRY_USER`` / ``SCHEMA_REGISTRY_PASSWORD`` settings when the user is set."""
    if auth is None:
        import settings

        if settings.SCHEMA_REGISTRY_USER:
            auth = (settings.SCHEMA_REGISTRY_USER, settings.SCHEMA_REGISTRY_PASSWORD)
    kwargs: dict[str, Any] = {"url": url, "timeout": httpx.Timeout(timeout)}
    if auth and auth[0]:
        kwargs["auth"] = httpx.BasicAuth(auth[0], auth[1])
    return SchemaRegistryClient(**kwargs)


def register_schema(
    client: SchemaRegistryClient,
    topic: str,
    avro_schema: dict | str,
    retries: int = 0,
    backoff_s: float = 1.0,
    compatibility: str | None = None,
) -> int:
    """Register ``avro_schema`` under ``<topic>-value`` and return its id.

    Registering the same schema again returns the same id (the registry makes it idempotent).
    With ``retries`` the call is retried with exponential backoff while the registry cannot
    be reached; a refusal (an incompatible schema, say) is raised at once as a
    :class:`SchemaRefused` carrying the registry's reason. ``compatibility`` (``FULL_TRANSITIVE``,
    ...) is set as the subject's rule before registering, so this schema and every later one are
    checked against it (the registry takes a rule for a subject that has no version yet). A schema
    the subject already has gets its id back without a check.
    """
    parsed = schema.AvroSchema(avro_schema)
    subject = subject_for(topic)
    attempt = 0
    while True:
        try:
            if compatibility:
                client.update_compatibility(compatibility, subject)
            return client.register(subject, parsed)
        except ClientError as exc:
            if exc.http_code is not None and exc.http_code < 500:
                raise SchemaRefused(subject, exc.http_code, _registry_reason(exc)) from exc
            error: Exception = exc
        except Exception as exc:  # connection refused, timeouts: httpx errors
            error = exc
        if attempt >= retries:
            raise ConnectionError(f"schema registry at {client.conf.get('url')} unreachable: {error}") from error
        time.sleep(backoff_s * (2**attempt))
        attempt += 1
