"""Hopping windows on event time and the features they give a transaction (Faust-free).

* :class:`HoppingWindows` - which windows ``[start, end)`` hold an event time, and expiry.
* :mod:`app.windows.aggregates` - the per-window aggregate and its update.
* :class:`WindowFeatures` - per-card window aggregates and seconds since the previous transaction,
  as one feature dict per transaction.

The Faust-table twin of :class:`WindowFeatures` is :class:`app.windows.tables.WindowTables`
(imported from its module: it needs a Faust app).
"""
from app.windows.base import HoppingWindows, Window
from app.windows.features import GAP_FEATURE, WindowFeatures, feature_names, window_key

__all__ = ["GAP_FEATURE", "HoppingWindows", "Window", "WindowFeatures", "feature_names", "window_key"]
