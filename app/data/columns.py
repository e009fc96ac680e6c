"""Column names of the ULB/Kaggle credit-card fraud CSV (and of our synthetic clone).

>>> len(FEATURE_COLUMNS), CSV_COLUMNS[0], CSV_COLUMNS[-1]
(29, 'Time', 'Class')
"""

from __future__ import annotations

#: Model inputs, in the column order used by :func:`app.data.ulb.load_frame`.
FEATURE_COLUMNS: list[str] = [f"V{i}" for i in range(1, 29)] + ["Amount"]

#: Header of ``creditcard.csv``: ``Time, V1..V28, Amount, Class``.
CSV_COLUMNS: list[str] = ["Time", *FEATURE_COLUMNS, "Class"]

#: Extra columns of synthetic rows (``generate(..., include_ids=True)``).
ID_COLUMNS: list[str] = ["card_id", "merchant_id"]
