"""The configuration the harness runs unless told otherwise: one partition, a model per partition,
no event-time alignment.

A deployment's defaults are central learning on 8 partitions (``settings.py``). The integration
tests and most benchmarks compare the service's scores with a plain predict-then-learn loop bit for
bit, which only a worker whose one model sees every transaction in order gives. They set these
variables in their own process, before ``settings`` is first imported, so that the topics they make
and the workers they start (which inherit the environment) agree; a variable already set wins, and a
test or benchmark of the central learning passes its own (``integration-test/test_central_*``,
``integration-test/test_defaults.py``, ``benchmarks/scaleout.py``).

>>> environ = {"FRAUD_TOPIC_PARTITIONS": "4"}
>>> use_single_partition(environ)
>>> environ["FRAUD_TOPIC_PARTITIONS"], environ["FRAUD_LEARNING_MODE"], environ["FRAUD_ALIGN_MAX_SKEW_S"]
('4', 'partition', '0')
"""
from __future__ import annotations

import os
import runpy
from pathlib import Path
from typing import MutableMapping
from unittest import mock

SETTINGS_FILE = Path(__file__).resolve().parents[2] / "settings.py"

SINGLE_PARTITION = {"FRAUD_TOPIC_PARTITIONS": "1", "FRAUD_LEARNING_MODE": "partition", "FRAUD_ALIGN_MAX_SKEW_S": "0"}


def use_single_partition(environ: MutableMapping[str, str] = os.environ) -> None:
    """Set each of :data:`SINGLE_PARTITION` in ``environ`` that is not set yet."""
    for name, value in SINGLE_PARTITION.items():
        environ.setdefault(name, value)


def settings_defaults() -> dict:
    """``settings.py``'s own values, as a deployment without any ``FRAUD_*`` variable gets them
    (whatever this process's environment pins).

    >>> settings_defaults()["TOPIC_PARTITIONS"], settings_defaults()["LEARNING_MODE"]
    (8, 'central')
    """
    clean = {name: value for name, value in os.environ.items() if not name.startswith("FRAUD_")}
    with mock.patch.dict(os.environ, clean, clear=True):
        values = runpy.run_path(str(SETTINGS_FILE))
    return {name: value for name, value in values.items() if name.isupper()}
