"""The stream's features, computed in batch by Spark with the stream's own pure functions.

Two kinds (both per key, grouped with ``applyInPandas``, each group running the stream's code):

* :func:`transaction_features` - the model's window features (:mod:`app.features`, the Handbook's
  baseline; the scorer's ``WINDOW_FEATURES``), see its doc;
* :func:`window_features` - the anomaly agent's short hopping windows (:mod:`app.windows`), below.

For :func:`window_features`, the transactions are grouped by window key (the card id, or
the global key for a transaction without one) and each group runs the stream's own
:class:`app.windows.WindowFeatures` over its events in order (``applyInPandas``). A key's features
depend only on its own earlier events and on how far event time has advanced, so the groups are
independent and the result equals one sequential pass over all events in the same order:

* ``order="event-time"`` (default): events by event time, ties by source position. Event time then
  never goes back, so no window is ever expired when read: exactly what the stream computes for a
  topic written in event-time order (the replay producer's).
* ``order="arrival"``: events in source order (Kafka record timestamp, partition, offset; a file's
  row order), late events included. The stream's watermark is the greatest event time seen so far
  *over all keys*; it is computed as a running maximum over the whole history (a window without
  partitions: one task) and handed to each key's pass, so late events skip expired windows exactly
  as in the stream.

>>> feature_columns(60, 20)[:2], feature_columns(60, 20)[-1], len(feature_columns(60, 20))
(['win0_count', 'win0_amount_sum'], 'seconds_since_previous', 13)
>>> transaction_feature_columns()[:1], len(transaction_feature_columns())
(['CUSTOMER_ID_NB_TX_1DAY_WINDOW'], 14)
"""
from __future__ import annotations

import settings
from app import configured
from app.windows.features import feature_names

ORDERS = ("event-time", "arrival")
ARRIVAL_ORDER = ["source_timestamp", "source_partition", "source_offset"]
EVENT_TIME_ORDER = ["event_time", *ARRIVAL_ORDER]


def window_params(size=None, step=None, expires=None, gap_cap=None, global_key=None) -> dict:
    """The window parameters, defaulting to the ``WINDOW_*`` settings the worker uses
    (:func:`app.configured.window_params`)."""
    given = {"size": size, "step": step, "expires": expires, "gap_cap": gap_cap, "global_key": global_key}
    params = {name: default if given[name] is None else given[name]
              for name, default in configured.window_params(settings).items()}
    return {name: value if name == "global_key" else float(value) for name, value in params.items()}


def feature_columns(size=None, step=None) -> list[str]:
    """The feature column names for windows of ``size`` seconds every ``step`` seconds."""
    params = window_params(size, step)
    return feature_names(int(params["size"] // params["step"]))


def _features_of_key(params: dict, order: list[str], arrival: bool, columns: list[str]):
    """The pandas function run per window key (picklable: it imports inside)."""

    def run(pdf):
        import pandas as pd

        from app.windows.features import WindowFeatures

        pdf = pdf.sort_values(order, kind="mergesort").reset_index(drop=True)
        wf = WindowFeatures(**params)
        cards = pdf["card_id"].where(pdf["card_id"].notna(), None).tolist()
        times = pdf["event_time"].astype(float).tolist()
        amounts = pdf["Amount"].astype(float).tolist()
        marks = pdf["_watermark"].tolist() if arrival else None
        rows = []
        for i, (card, t, amount) in enumerate(zip(cards, times, amounts)):
            if marks is not None and marks[i] > wf.watermark:
                wf.watermark = marks[i]  # how far the whole stream had advanced when this event came
            rows.append(wf.update(card, t, amount))
        feats = pd.DataFrame.from_records(rows, columns=columns) if rows else pd.DataFrame(columns=columns)
        out = pd.concat([pdf.drop(columns=[c for c in ("_window_key", "_watermark") if c in pdf]), feats], axis=1)
        return out

    return run


def window_features(frame, *, order: str = "event-time", size=None, step=None, expires=None, gap_cap=None,
                    global_key=None):
    """``frame`` (transactions, see :mod:`app.backfill.sources`) with the window feature columns added."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    params = window_params(size, step, expires, gap_cap, global_key)
    columns = feature_names(int(params["size"] // params["step"]))
    arrival = order == "arrival"
    keyed = frame.withColumn(
        "_window_key", F.coalesce(F.when(F.col("card_id") != "", F.col("card_id")), F.lit(params["global_key"])))
    if arrival:
        so_far = Window.orderBy(*ARRIVAL_ORDER).rowsBetween(Window.unboundedPreceding, Window.currentRow)
        keyed = keyed.withColumn("_watermark", F.max("event_time").over(so_far))
    schema = T.StructType(list(frame.schema.fields) + [T.StructField(c, T.DoubleType(), False) for c in columns])
    run = _features_of_key(params, ARRIVAL_ORDER if arrival else EVENT_TIME_ORDER, arrival, columns)
    return keyed.groupBy("_window_key").applyInPandas(run, schema=schema)


# --- the model's window features (app.features) ----------------------------------------------------
#: The Handbook's feedback delay: in batch, a label is taken as received this long after its transaction.
LABEL_DELAY_S = 7 * 86_400
#: What identifies a transaction of a source (its position): the parts are joined back on it.
ROW_KEY = ["source_partition", "source_offset"]


def transaction_feature_columns(features=None) -> list[str]:
    """The columns :func:`transaction_features` adds: ``features.names`` (default: the configured
    :func:`app.configured.transaction_features`)."""
    return list((features or configured.transaction_features(settings)).names)


def _card_part(features, order: list[str]):
    """Per card id: the card windows of each transaction, in ``order`` (picklable)."""
    names = list(features.cards.names)

    def run(pdf):
        import pandas as pd

        pdf = pdf.sort_values(order, kind="mergesort")
        state, rows = None, []
        for t, amount in zip(pdf["event_time"].astype(float).tolist(), pdf["Amount"].astype(float).tolist()):
            state, feats = features.card(state, t, amount)
            rows.append([feats[n] for n in names])
        out = pd.DataFrame.from_records(rows, columns=names) if rows else pd.DataFrame(columns=names)
        return pd.concat([pdf[ROW_KEY].reset_index(drop=True), out.astype(float)], axis=1)

    return run


def _terminal_part(features, order: list[str], label_delay: float):
    """Per terminal id: the terminal windows of each transaction, labels received ``label_delay``
    after their transaction, transactions and labels merged as :func:`app.features.merged` does."""
    names = list(features.terminals.names)

    def run(pdf):
        import pandas as pd

        pdf = pdf.sort_values(order, kind="mergesort").reset_index(drop=True)
        times = pdf["event_time"].astype(float).tolist()
        labels = [None if pd.isna(v) else int(v) for v in pdf["Class"].tolist()]
        # (time received, 0 = transaction / 1 = label, position in the group's order)
        events = [(t, 0, i) for i, t in enumerate(times)]
        events += [(times[i] + label_delay, 1, i) for i, y in enumerate(labels) if y is not None]
        events.sort()
        state, rows = None, [None] * len(times)
        for _, kind, i in events:
            if kind == 0:
                feats = features.terminal(state, times[i])
                rows[i] = [feats[n] for n in names]
            else:
                state = features.label(state, times[i], labels[i])
        out = pd.DataFrame.from_records(rows, columns=names) if rows else pd.DataFrame(columns=names)
        return pd.concat([pdf[ROW_KEY], out.astype(float)], axis=1)

    return run


def _calendar_part(features, names: list[str]):
    def run(batches):
        for pdf in batches:
            has = pdf["_has_id"].tolist()
            flags = [features.calendar_of(t) if h else {} for t, h in zip(pdf["event_time"].astype(float).tolist(), has)]
            for name in names:
                pdf[name] = [f.get(name) for f in flags]
            yield pdf.drop(columns=["_has_id"])

    return run


def transaction_features(frame, *, features=None, label_delay: float = LABEL_DELAY_S):
    """``frame`` (transactions, see :mod:`app.backfill.sources`) with the model's window features
    added (:func:`transaction_feature_columns`; ``null`` where the stream leaves a feature out),
    equal to what :class:`app.features.StreamFeatures` computes over the rows in event-time order
    (ties by source position) with their labels received ``label_delay`` after them.

    Each kind is computed by the stream's own functions in its own groups, then joined back by
    source position: per card id, one :meth:`~app.features.TransactionFeatures.card` update per
    transaction in event-time order; per terminal id, its transactions and its labels in the order
    they are received (a label ``label_delay`` after its transaction, default 7 days: the
    Handbook's delay and the replay's default; at equal times a transaction before a label), each
    transaction reading :meth:`~app.features.TransactionFeatures.terminal` before the labels that
    come after it; then the calendar flags of each transaction with a card or a terminal id. History
    replayed with another label delay (or with labels in the events) needs that ``label_delay``.
    """
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    features = features or configured.transaction_features(settings)
    card_names, terminal_names = list(features.cards.names), list(features.terminals.names)
    calendar_names = [n for n in features.names if n not in card_names and n not in terminal_names]
    has_card = F.col("card_id").isNotNull() & (F.col("card_id") != "")
    has_terminal = F.col("terminal_id").isNotNull() & (F.col("terminal_id") != "")
    double = T.DoubleType()

    def part_schema(names):
        return T.StructType([frame.schema[c] for c in ROW_KEY] + [T.StructField(n, double) for n in names])

    keys = list(dict.fromkeys([*ROW_KEY, "event_time", "Amount", "Class", *EVENT_TIME_ORDER]))
    cards = (frame.where(has_card).select("card_id", *keys).groupBy("card_id")
             .applyInPandas(_card_part(features, EVENT_TIME_ORDER), schema=part_schema(card_names)))
    terminals = (frame.where(has_terminal).select("terminal_id", *keys).groupBy("terminal_id")
                 .applyInPandas(_terminal_part(features, EVENT_TIME_ORDER, float(label_delay)),
                                schema=part_schema(terminal_names)))
    out = frame
    if calendar_names:
        schema = T.StructType(list(frame.schema.fields) + [T.StructField(n, double) for n in calendar_names])
        out = (out.withColumn("_has_id", has_card | has_terminal)
               .mapInPandas(_calendar_part(features, calendar_names), schema=schema))
    out = out.join(cards, ROW_KEY, "left").join(terminals, ROW_KEY, "left")
    return out.select(*frame.columns, *features.names)
