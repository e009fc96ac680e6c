"""Spark batch jobs over history, consistent with the stream (``python -m app.backfill ...``).

* ``features`` - the model's window features, as the scorer computes them
  (:mod:`app.backfill.features`), to Parquet and/or a topic.
* ``scores`` - batch scores by a model checkpoint (:mod:`app.backfill.scores`).
* ``warm-start`` - the stream's model trained on history in event order, as a checkpoint the
  worker loads at start (``WARM_START_PATH``; :mod:`app.backfill.warm_start`).

History comes from the transactions topic or from CSV / Parquet files (:mod:`app.backfill.sources`).
The session (:mod:`app.backfill.session`) is local by default and adds the Kafka and Avro connector
jars fetched through ``infra/pom.xml`` (:mod:`app.backfill.jars`). pyspark is an optional
dependency (``pip install -e '.[spark]'``): nothing here imports it at module level.
"""
