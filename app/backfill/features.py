"""The model's window features of history, computed by Spark with the stream's own pure functions.

:func:`transaction_features` adds to each transaction what the scorer computes for it
(:class:`app.features.TransactionFeatures` as the settings configure it: per-card windows, with
their amount ratios when ``CARD_AMOUNT_RATIOS``, per-terminal windows from the labels received,
calendar flags), each kind per key in its own groups (``applyInPandas``), each group running the
stream's code over its events in event-time order (ties by source position: :data:`EVENT_TIME_ORDER`). A label is taken as received
``label_delay`` after its transaction (:data:`LABEL_DELAY_S`, 7 days, by default).

There is one order, event time: the result is that of one pass over the events sorted by event
time, which is what the stream computes when it meets them in that order (a topic the replay
producer wrote). Events that reached the stream out of event-time order are computed here as if
they had come in order.

>>> transaction_feature_columns()[:1], len(transaction_feature_columns())
(['CUSTOMER_ID_NB_TX_1DAY_WINDOW'], 17)
>>> EVENT_TIME_ORDER
['event_time', 'source_timestamp', 'source_partition', 'source_offset']
"""
from __future__ import annotations

import settings
from app import configured

#: The order the features are computed in: event time, ties by position in the source.
EVENT_TIME_ORDER = ["event_time", "source_timestamp", "source_partition", "source_offset"]
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
