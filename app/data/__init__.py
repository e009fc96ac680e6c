"""Transaction data: the real ULB/Kaggle ``creditcard.csv`` and a seeded synthetic clone.

* :func:`ensure_creditcard_csv` - download (once), verify and cache the ULB CSV.
* :func:`iter_rows` / :func:`load_frame` - read it as dicts or numpy arrays.
* :func:`generate` / :func:`write_csv` - synthetic rows with drift and velocity fraud.

CLI: ``python -m app.data fetch`` and ``python -m app.data synth`` (see ``__main__``).
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
