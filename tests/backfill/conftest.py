"""One local SparkSession (2 cores, 1 GB driver) for every backfill test of the session."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def spark():
    pytest.importorskip("pyspark")
    from app.backfill.session import build_session

    session = build_session("local[2]", app_name="fraud-backfill-tests", driver_memory="1g",
                            extra_conf={"spark.sql.shuffle.partitions": "4"})
    yield session
    session.stop()
