"""History as a Spark DataFrame of transactions: from the transactions topic or from files.

Every source gives the same columns (:data:`COLUMNS`): the ``Transaction`` record's fields, then
its position in the source (``source_partition``, ``source_offset``, ``source_timestamp``), which
fixes the order in which the stream met the events.

* :func:`read_kafka` - Spark's Kafka source over an offset range (``earliest``/``latest`` or Spark's
  JSON form) and/or a range of record timestamps; each value's Confluent header (magic byte 0,
  4-byte schema id) is stripped and the body decoded by spark-avro's ``from_avro`` with the writer's
  schema fetched from the registry by that id, resolved to the ``Transaction`` schema (so a producer
  that added an optional field is still read). Values that are not Confluent Avro, or whose body
  does not fit, are dropped (the stream sends them to the dead-letter topic).
* :func:`read_files` - a CSV (the ULB ``creditcard.csv``, or a synthetic one with card ids) or
  Parquet. Rows without ``event_time`` get ``time_base + Time`` and rows without an id get the
  replay producer's id ``<prefix>-<row index>``, so a file and its replay agree.

>>> COLUMNS[:3], COLUMNS[-3:]
(['transaction_id', 'event_time', 'V1'], ['source_partition', 'source_offset', 'source_timestamp'])
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import settings
from app.admin import bootstrap_servers
from app.records import FEATURE_NAMES, Transaction

RECORD_COLUMNS = ["transaction_id", "event_time", *FEATURE_NAMES, "Class", "card_id", "merchant_id", "terminal_id"]
POSITION_COLUMNS = ["source_partition", "source_offset", "source_timestamp"]
COLUMNS = RECORD_COLUMNS + POSITION_COLUMNS


def transaction_schema_json() -> str:
    """The ``Transaction`` Avro schema (the reader's schema) as JSON."""
    return json.dumps(Transaction.avro_schema_to_python())


def _kafka_security_options() -> dict[str, str]:
    """``kafka.*`` options of the Spark Kafka source from the service's security settings."""
    protocol = settings.KAFKA_SECURITY_PROTOCOL.upper()
    options = {"kafka.security.protocol": protocol}
    if protocol.startswith("SASL"):
        module = ("org.apache.kafka.common.security.plain.PlainLoginModule" if settings.KAFKA_SASL_MECHANISM == "PLAIN"
                  else "org.apache.kafka.common.security.scram.ScramLoginModule")
        options["kafka.sasl.mechanism"] = settings.KAFKA_SASL_MECHANISM
        options["kafka.sasl.jaas.config"] = (f'{module} required username="{settings.KAFKA_SASL_USERNAME}" '
                                             f'password="{settings.KAFKA_SASL_PASSWORD}";')
    if protocol.endswith("SSL") and settings.KAFKA_SSL_CAFILE:
        options["kafka.ssl.truststore.type"] = "PEM"
        options["kafka.ssl.truststore.location"] = settings.KAFKA_SSL_CAFILE
    return options


def read_kafka(spark, topic: str | None = None, *, broker: str | None = None, registry_url: str | None = None,
               starting_offsets: str = "earliest", ending_offsets: str = "latest",
               starting_timestamp: int | None = None, ending_timestamp: int | None = None):
    """The transactions of ``topic`` (default ``settings.TRANSACTIONS_TOPIC``) as a DataFrame.

    Timestamps are the Kafka records' (epoch milliseconds); when given they take precedence over
    the offsets on their side of the range.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.avro.functions import from_avro

    from app.serialization import make_registry_client

    topic = topic or settings.TRANSACTIONS_TOPIC
    reader = (spark.read.format("kafka")
              .option("kafka.bootstrap.servers", bootstrap_servers(broker or settings.KAFKA_BROKER))
              .option("subscribe", topic)
              .option("startingOffsets", starting_offsets).option("endingOffsets", ending_offsets)
              .option("failOnDataLoss", "false"))
    for key, value in _kafka_security_options().items():
        reader = reader.option(key, value)
    if starting_timestamp is not None:
        reader = reader.option("startingTimestamp", str(int(starting_timestamp)))
    if ending_timestamp is not None:
        reader = reader.option("endingTimestamp", str(int(ending_timestamp)))
    raw = reader.load()
    framed = raw.where(
        (F.length("value") > 5) & (F.substring("value", 1, 1) == F.lit(bytearray([0])))
    ).select(
        F.conv(F.hex(F.substring("value", 2, 4)), 16, 10).cast("int").alias("schema_id"),
        F.expr("substring(value, 6)").alias("body"),
        F.col("partition").alias("source_partition"),
        F.col("offset").alias("source_offset"),
        (F.col("timestamp").cast("double") * 1000).cast("long").alias("source_timestamp"),
    )
    schema_ids = sorted(row.schema_id for row in framed.select("schema_id").distinct().collect())
    client = make_registry_client(registry_url or settings.SCHEMA_REGISTRY_URL,
                                  auth=(settings.SCHEMA_REGISTRY_USER, settings.SCHEMA_REGISTRY_PASSWORD))
    reader_schema = transaction_schema_json()
    parts = []
    for schema_id in schema_ids:
        found = client.get_by_id(schema_id)
        if found is None:  # the stream dead-letters these: unknown-schema-id
            continue
        options = {"mode": "PERMISSIVE", "avroSchema": reader_schema}
        decoded = framed.where(F.col("schema_id") == schema_id).select(
            from_avro("body", json.dumps(found.raw_schema), options).alias("tx"), *POSITION_COLUMNS)
        parts.append(decoded.where(F.col("tx").isNotNull()).select(
            *[(F.col(f"tx.{name}").cast("int") if name == "Class" else F.col(f"tx.{name}")).alias(name)
              for name in RECORD_COLUMNS], *POSITION_COLUMNS))
    if not parts:
        return _empty(spark)
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    return out


def _empty(spark):
    from pyspark.sql import types as T

    return spark.createDataFrame([], _file_schema(RECORD_COLUMNS + ["source_partition"]).add(
        "source_offset", T.LongType()).add("source_timestamp", T.LongType()))


def _file_schema(columns: list[str]):
    from pyspark.sql import types as T

    fields = []
    for name in columns:
        if name in ("transaction_id", "card_id", "merchant_id", "terminal_id"):
            kind = T.StringType()
        elif name in ("Class", "source_partition"):
            kind = T.IntegerType()
        else:
            kind = T.DoubleType()
        fields.append(T.StructField(name, kind, True))
    return T.StructType(fields)


def read_files(spark, path: str | Path, *, time_base: float = 0.0, id_prefix: str = "tx", limit: int | None = None):
    """The transactions in a CSV file or a Parquet file/folder, in file order (see the module doc)."""
    from pyspark.sql import functions as F

    path = Path(path)
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8") as f:
            header = next(csv.reader(f))
        frame = spark.read.csv(str(path), header=True, schema=_file_schema(header), enforceSchema=True)
    else:
        frame = spark.read.parquet(str(path))
    frame = with_row_index(frame, "source_offset")
    if limit is not None:
        frame = frame.where(F.col("source_offset") < int(limit))
    present = set(frame.columns)
    if "event_time" not in present:
        frame = frame.withColumn("event_time", F.lit(float(time_base)) + F.col("Time").cast("double"))
    if "transaction_id" not in present:
        frame = frame.withColumn("transaction_id", F.format_string(f"{id_prefix}-%09d", F.col("source_offset")))
    for name in ("Class", "card_id", "merchant_id", "terminal_id"):
        if name not in present:
            frame = frame.withColumn(name, F.lit(None).cast("int" if name == "Class" else "string"))
    frame = frame.withColumn("source_partition", F.lit(0)).withColumn("source_timestamp", F.lit(0).cast("long"))
    return frame.select(
        *[F.col(c).cast("double") if c in FEATURE_NAMES or c == "event_time" else F.col(c) for c in RECORD_COLUMNS],
        *POSITION_COLUMNS,
    ).withColumn("Class", F.col("Class").cast("int"))


def with_row_index(frame, name: str):
    """``frame`` with a dense 0-based row index in its current order (no single-partition shuffle).

    Spark's ``monotonically_increasing_id`` puts the partition number in the upper bits; the rows of
    every partition are counted once and each partition's ids are shifted by the rows before it.
    """
    from pyspark.sql import functions as F

    tagged = frame.withColumn("_pid", F.spark_partition_id()).withColumn("_mid", F.monotonically_increasing_id())
    counts = sorted((row["_pid"], row["count"]) for row in tagged.groupBy("_pid").count().collect())
    starts, total = [], 0
    for pid, count in counts:
        starts += [F.lit(pid), F.lit(total)]
        total += count
    start = F.create_map(*starts)[F.col("_pid")] if starts else F.lit(0)
    index = start + F.col("_mid") - F.shiftleft(F.col("_pid").cast("long"), 33)
    return tagged.withColumn(name, index.cast("long")).drop("_pid", "_mid")


def read_source(spark, source: str, **kwargs):
    """``kafka`` (the transactions topic), ``ulb`` (the real file) or a path (CSV or Parquet)."""
    if source == "kafka":
        keys = ("topic", "broker", "registry_url", "starting_offsets", "ending_offsets", "starting_timestamp",
                "ending_timestamp")
        return read_kafka(spark, **{k: v for k, v in kwargs.items() if k in keys and v is not None})
    if source == "ulb":
        from app.data import ensure_creditcard_csv

        source = str(ensure_creditcard_csv())
    keys = ("time_base", "id_prefix", "limit")
    return read_files(spark, source, **{k: v for k, v in kwargs.items() if k in keys and v is not None})
