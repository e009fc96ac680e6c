"""Where the jobs' results go: Parquet files, and (features) a Kafka topic in the Confluent format.

:func:`publish` writes each row as Avro with the Confluent header (magic byte 0, the 4-byte id of
the schema registered under ``<topic>-value``), keyed by transaction id, like every topic of the
service: spark-avro's ``to_avro`` encodes the body and the header is prepended in Spark. The
schema is derived from the DataFrame (:func:`avro_schema`); every field is nullable.
"""
from __future__ import annotations

import asyncio
import struct

import settings
from app.admin import bootstrap_servers, ensure_topics

_AVRO_TYPES = {"string": "string", "double": "double", "float": "float", "int": "int", "bigint": "long",
               "boolean": "boolean", "smallint": "int", "tinyint": "int"}


def write_parquet(frame, path: str, mode: str = "overwrite") -> None:
    """Write ``frame`` as Parquet (a folder of part files)."""
    frame.write.mode(mode).parquet(str(path))


def avro_schema(frame, name: str = "WindowFeatures", namespace: str = "fraudstream") -> dict:
    """An Avro record schema for ``frame``'s columns (simple types only), every field nullable."""
    fields = []
    for field in frame.schema.fields:
        kind = _AVRO_TYPES.get(field.dataType.simpleString())
        if kind is None:
            raise ValueError(f"column {field.name} of type {field.dataType.simpleString()} has no Avro mapping here")
        fields.append({"name": field.name, "type": ["null", kind], "default": None})
    return {"type": "record", "name": name, "namespace": namespace, "fields": fields}


def confluent_header(schema_id: int) -> bytes:
    """The 5-byte Confluent wire-format header of a schema id.

    >>> confluent_header(7).hex()
    '0000000007'
    """
    return struct.pack(">bI", 0, schema_id)


def publish(frame, topic: str | None = None, *, broker: str | None = None, registry_url: str | None = None,
            record_name: str = "WindowFeatures") -> int:
    """Send every row of ``frame`` to ``topic`` (Confluent Avro, key = ``transaction_id``); return the schema id."""
    import json

    from pyspark.sql import functions as F
    from pyspark.sql.avro.functions import to_avro

    from app.backfill.sources import _kafka_security_options
    from app.serialization import make_registry_client, register_schema

    topic = topic or settings.BACKFILL_FEATURES_TOPIC
    broker = broker or settings.KAFKA_BROKER
    schema = avro_schema(frame, record_name)
    client = make_registry_client(registry_url or settings.SCHEMA_REGISTRY_URL,
                                  auth=(settings.SCHEMA_REGISTRY_USER, settings.SCHEMA_REGISTRY_PASSWORD))
    schema_id = register_schema(client, topic, schema, retries=3)
    asyncio.run(ensure_topics(broker, [topic], settings.TOPIC_PARTITIONS, settings.TOPIC_REPLICAS))
    body = to_avro(F.struct(*frame.columns), json.dumps(schema))
    out = frame.select(F.col("transaction_id").cast("binary").alias("key"),
                       F.concat(F.lit(confluent_header(schema_id)), body).alias("value"))
    writer = out.write.format("kafka").option("kafka.bootstrap.servers", bootstrap_servers(broker)).option("topic", topic)
    for key, value in _kafka_security_options().items():
        writer = writer.option(key, value)
    writer.save()
    return schema_id
