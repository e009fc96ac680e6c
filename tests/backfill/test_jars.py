"""The Maven file's Spark version is the installed pyspark's (the connectors must match it)."""
from __future__ import annotations

import pytest

from app.backfill import jars


def test_pom_spark_version_matches_pyspark():
    pytest.importorskip("pyspark")
    assert jars.pom_spark_version() == jars.spark_version()


def test_a_missing_jars_folder_is_reported(monkeypatch, tmp_path):
    pytest.importorskip("pyspark")
    monkeypatch.setattr(jars.settings, "SPARK_JARS_DIR", str(tmp_path / "none"))
    with pytest.raises(jars.JarsError, match="no Spark .* connector jars"):
        jars.connector_jars()
