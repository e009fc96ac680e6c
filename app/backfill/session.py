"""The SparkSession of the backfill jobs: local by default, any master by argument.

* ``SPARK_LOCAL_IP`` is set (``settings.SPARK_LOCAL_IP``, 127.0.0.1) before the JVM starts, so a
  local run binds to the loopback address only.
* The Kafka and Avro connector jars (:mod:`app.backfill.jars`) are added with ``spark.jars``; Spark
  ships them to a cluster's executors itself. Where they cannot be fetched with Maven (no ``mvn``,
  no repository checkout: a container), the same artifacts are asked of Spark's own resolver
  (``spark.jars.packages``, from Maven Central).
* Python workers run this interpreter (``PYSPARK_PYTHON``). On a cluster (a master that is not
  ``local``), the project's code (``app`` and ``settings.py``) is zipped and shipped with
  ``addPyFile``; its dependencies (river, pandas, pyarrow) must be installed on the workers.
* Small-machine defaults: ``settings.SPARK_SHUFFLE_PARTITIONS`` shuffle partitions, no web UI,
  UTC session time zone, Arrow batches of ``settings.SPARK_ARROW_BATCH_ROWS`` rows.
"""
from __future__ import annotations

import os
import sys
import tempfile
import zipfile
from pathlib import Path

import settings
from app.backfill.jars import REPO_ROOT, JarsError, connector_jars, spark_version


def build_session(master: str | None = None, app_name: str = "fraud-backfill", driver_memory: str | None = None,
                  connectors: bool = True, extra_conf: dict[str, str] | None = None):
    """A SparkSession for the jobs (``master`` defaults to ``settings.SPARK_MASTER``)."""
    os.environ.setdefault("SPARK_LOCAL_IP", settings.SPARK_LOCAL_IP)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    master = master or settings.SPARK_MASTER
    builder = (
        SparkSession.builder.master(master).appName(app_name)
        .config("spark.driver.memory", driver_memory or settings.SPARK_DRIVER_MEMORY)
        .config("spark.sql.shuffle.partitions", str(settings.SPARK_SHUFFLE_PARTITIONS))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(settings.SPARK_ARROW_BATCH_ROWS))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
    )
    if master.startswith("local"):
        builder = builder.config("spark.driver.host", os.environ["SPARK_LOCAL_IP"]).config(
            "spark.driver.bindAddress", os.environ["SPARK_LOCAL_IP"])
    if connectors:
        try:
            builder = builder.config("spark.jars", ",".join(connector_jars()))
        except JarsError as exc:  # no Maven here (a container, say): Spark resolves the same artifacts itself
            print(f"backfill: {exc}; asking Spark for {connector_packages()}", file=sys.stderr)
            builder = builder.config("spark.jars.packages", connector_packages())
    for key, value in (extra_conf or {}).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    if not master.startswith("local"):
        spark.sparkContext.addPyFile(str(project_zip()))
    return spark


def connector_packages() -> str:
    """The connectors' Maven coordinates, for ``spark.jars.packages`` (the fallback without Maven)."""
    version = spark_version()
    return f"org.apache.spark:spark-sql-kafka-0-10_2.13:{version},org.apache.spark:spark-avro_2.13:{version}"


def project_zip() -> Path:
    """``app/`` and ``settings.py`` in a zip, for a cluster's Python workers."""
    out = Path(tempfile.mkdtemp(prefix="fraud-backfill-")) / "fraudstream.zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(REPO_ROOT / "settings.py", "settings.py")
        for path in sorted((REPO_ROOT / "app").rglob("*.py")):
            zf.write(path, path.relative_to(REPO_ROOT).as_posix())
    return out
