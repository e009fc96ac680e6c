"""Spark's Kafka source and Avro functions: connector jars fetched through ``infra/pom.xml``.

The pyspark wheel lacks ``spark-sql-kafka-0-10`` and ``spark-avro``. On first use
:func:`connector_jars` runs Maven once::

    mvn -q -B -f infra/pom.xml -P spark dependency:copy-dependencies -DoutputDirectory=<dir>

into ``.stack/dist/spark-jars-<spark version>`` (or ``settings.SPARK_JARS_DIR``) and then reuses the
folder. The pom's ``spark.version`` must equal the installed pyspark's version: a connector of
another Spark release fails at run time in obscure ways, so a mismatch is refused up front.

>>> pom_spark_version().split(".")[0]    # pyspark's major version, checked against the wheel on fetch
'4'
"""
from __future__ import annotations

import fcntl
import re
import shutil
import subprocess
from pathlib import Path

import settings

REPO_ROOT = Path(__file__).resolve().parents[2]
POM = REPO_ROOT / "infra" / "pom.xml"
#: The jars a job needs; Maven also brings kafka-clients and commons-pool2.
CONNECTORS = ("spark-sql-kafka-0-10", "spark-token-provider-kafka-0-10", "spark-avro")


def spark_version() -> str:
    """The installed pyspark's version."""
    import pyspark

    return pyspark.__version__


class JarsError(RuntimeError):
    """The connector jars are missing and could not be fetched."""


def pom_spark_version(pom: Path = POM) -> str:
    """The ``spark.version`` property of the Maven file."""
    found = re.search(r"<spark\.version>([^<]+)</spark\.version>", pom.read_text())
    if not found:
        raise JarsError(f"{pom} has no <spark.version> property")
    return found.group(1).strip()


def jars_dir() -> Path:
    """Where the connector jars live (``settings.SPARK_JARS_DIR`` or the versioned default)."""
    if settings.SPARK_JARS_DIR:
        return Path(settings.SPARK_JARS_DIR)
    return REPO_ROOT / ".stack" / "dist" / f"spark-jars-{spark_version()}"


def _complete(folder: Path) -> bool:
    names = [p.name for p in folder.glob("*.jar")] if folder.is_dir() else []
    version = spark_version()
    return all(any(n.startswith(f"{c}_") and version in n for n in names) for c in CONNECTORS)


def connector_jars(fetch: bool = True) -> list[str]:
    """Paths of every jar to add to the session, fetching them first if needed (see the module doc)."""
    folder = jars_dir()
    if not _complete(folder):
        if not fetch or settings.SPARK_JARS_DIR:
            raise JarsError(f"no Spark {spark_version()} connector jars in {folder}")
        _fetch(folder)
    return sorted(str(p) for p in folder.glob("*.jar"))


def _fetch(folder: Path) -> None:
    if not POM.is_file():
        raise JarsError(f"{POM} not found: set FRAUD_SPARK_JARS_DIR to a folder with the connector jars")
    version = pom_spark_version()
    if version != spark_version():
        raise JarsError(f"infra/pom.xml has spark.version {version} but pyspark is {spark_version()}: make them equal")
    if shutil.which("mvn") is None:
        raise JarsError("mvn not found on PATH: install Maven (apt-get install maven)")
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one fetch at a time; the others reuse its result
        if _complete(folder):
            return
        part = folder.with_name(folder.name + ".part")
        shutil.rmtree(part, ignore_errors=True)
        cmd = ["mvn", "-q", "-B", "-f", str(POM), "-P", "spark", "dependency:copy-dependencies",
               f"-DoutputDirectory={part}"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0 or not _complete(part):
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
            raise JarsError(f"fetching the Spark connector jars failed ({' '.join(cmd)}):\n{tail}")
        shutil.rmtree(folder, ignore_errors=True)
        part.rename(folder)
