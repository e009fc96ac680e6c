"""Transaction data: the real ULB/Kaggle ``creditcard.csv``, a seeded synthetic clone, and the
Handbook's transaction simulator (cards and terminals, :mod:`app.data.simulator`).

* :func:`ensure_creditcard_csv` - download (once), verify and cache the ULB CSV.
* :func:`iter_rows` / :func:`load_frame` - read it as dicts or numpy arrays.
* :func:`generate` / :func:`write_csv` - synthetic rows with drift and velocity fraud.
* :func:`app.data.simulator.load` - the simulator's transactions (simulated once, cached).

CLI: ``python -m app.data fetch``, ``synth`` and ``simulate`` (see ``__main__``).
"""

from .columns import CSV_COLUMNS, FEATURE_COLUMNS, ID_COLUMNS
from .synthetic import generate, write_csv
from .ulb import DatasetError, Frame, default_cache_dir, ensure_creditcard_csv, iter_rows, load_frame

__all__ = [
    "CSV_COLUMNS",
    "FEATURE_COLUMNS",
    "ID_COLUMNS",
    "DatasetError",
    "Frame",
    "default_cache_dir",
    "ensure_creditcard_csv",
    "generate",
    "iter_rows",
    "load_frame",
    "write_csv",
]
