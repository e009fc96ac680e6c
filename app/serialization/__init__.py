"""Confluent-wire-format Avro for Faust: the registry client and the codec."""
from app.serialization.errors import DecodeError
from app.serialization.registry import SchemaRefused, make_registry_client, register_schema, subject_for
from app.serialization.avro import ConfluentAvroCodec, MAGIC_BYTE

__all__ = [
    "ConfluentAvroCodec", "DecodeError", "SchemaRefused", "MAGIC_BYTE", "make_registry_client", "register_schema",
    "subject_for",
]
