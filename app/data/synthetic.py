"""Seeded synthetic card transactions shaped like the ULB ``creditcard.csv``.

Rows have the ULB columns (``Time, V1..V28, Amount, Class``) plus, unless
``include_ids=False``, ``card_id`` (``"card-000123"``) and ``merchant_id``
(``"m-0042"``).  Everything is drawn from one ``numpy.random.default_rng(seed)``,
so the output is a pure function of the arguments.

Model (what tests may rely on)
------------------------------
* **Time**: ``Time[0] == start_time``; exponential gaps of mean ``mean_gap_s``
  between the base rows; non-decreasing; rounded to 1 ms.
* **Cards / merchants**: base rows pick a card uniformly out of ``n_cards`` and a
  merchant uniformly out of ``n_merchants``.  A card's mean gap between its own
  transactions is therefore about ``n_cards * mean_gap_s`` (10 min with the
  defaults; use e.g. ``n_cards=10_000`` for ~1.7 h).
* **Legit rows**: ``V1..V28`` iid N(0, 1) (rounded to 6 decimals);
  ``Amount`` lognormal, median ``legit_amount_median``, sigma 1.0, rounded to cents.
* **Signature fraud** (``Class=1``; probability ``fraud_rate`` per row, or
  ``fraud_rate / 2`` with ``velocity_fraud``): legit V noise plus
  ``strength * shift`` on the active concept's signature columns, with
  ``strength ~ U(0.3, 1.0)`` per row; ``Amount`` lognormal with median
  ``fraud_amount_median``, sigma 0.8.
* **Concepts** (see :data:`CONCEPTS`): rows before the first drift index use
  concept 0; each passed index in ``drift_at`` moves to the next concept
  (cyclically).  A change moves the fraud signature to *disjoint* V columns and
  changes both Amount medians.  Legit V columns never change.
  ``drift_kind="abrupt"``: row ``i >= d`` uses the new concept.
  ``drift_kind="gradual"``: row ``i`` uses the new concept with probability
  ``clip((i - d + 1) / drift_window, 0, 1)``, i.e. a linear ramp over
  ``drift_window`` (2000) rows; from ``d + drift_window - 1`` on it is all new.
* **Velocity fraud** (``velocity_fraud=True``): about ``fraud_rate / 2`` of the
  rows are bursts: a random card makes 5-10 transactions with gaps
  ``U(0.5, 5)`` s (burst span < 45 s) at random merchants, merged into the
  stream by time.  Burst rows have ``Class=1`` but legit V columns *and* legit
  Amounts, so only per-card velocity reveals them.  Concepts do not affect them
  (except the legit Amount median).

>>> rows = generate(5, seed=1)
>>> len(rows), list(rows[0])[:3], rows[0]["Time"], rows[0]["card_id"][:5]
(5, ['Time', 'V1', 'V2'], 0.0, 'card-')
>>> rows == generate(5, seed=1)
True
>>> sorted(generate(2, include_ids=False)[0]) == sorted(CSV_COLUMNS)
True
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np

from .columns import CSV_COLUMNS, ID_COLUMNS

Row = dict[str, float | int | str]


@dataclass(frozen=True)
class Concept:
    """One fraud concept: V-column shifts (full strength) and Amount medians."""

    signature: Mapping[str, float]
    legit_amount_median: float
    fraud_amount_median: float


#: Concept ``k`` is ``CONCEPTS[k % len(CONCEPTS)]``; signatures use disjoint columns.
CONCEPTS: tuple[Concept, ...] = (
    Concept({"V14": -4.0, "V17": -3.5, "V12": -3.0, "V10": -2.5}, 20.0, 120.0),
    Concept({"V4": 4.0, "V11": 3.5, "V3": -3.0, "V7": -2.5}, 45.0, 15.0),
    Concept({"V9": -4.0, "V18": -3.5, "V21": 3.0, "V1": -2.5}, 20.0, 300.0),
)
LEGIT_AMOUNT_SIGMA = 1.0
FRAUD_AMOUNT_SIGMA = 0.8
STRENGTH_RANGE = (0.3, 1.0)
BURST_LEN = (5, 10)  # inclusive
BURST_GAP_S = (0.5, 5.0)
VELOCITY_SHARE = 0.5  # share of fraud_rate produced as bursts when velocity_fraud
DRIFT_WINDOW = 2000


def _concepts(n: int, drift_at: Sequence[int], kind: str, window: int,
              u: np.ndarray) -> np.ndarray:
    """Concept index per row; ``u`` is one U(0,1) per row (used by "gradual")."""
    idx = np.arange(n)
    concept = np.zeros(n, dtype=np.int64)
    for d in drift_at:  # sorted, so with a shared u the ramps stay nested
        if kind == "abrupt":
            concept += idx >= d
        else:
            concept += u < np.clip((idx - d + 1) / window, 0.0, 1.0)
    return concept


def generate(
    n: int,
    seed: int = 0,
    fraud_rate: float = 0.0017,
    n_cards: int = 1000,
    n_merchants: int = 200,
    start_time: float = 0.0,
    mean_gap_s: float = 0.6,
    drift_at: Sequence[int] = (),
    drift_kind: str = "abrupt",
    velocity_fraud: bool = False,
    include_ids: bool = True,
    drift_window: int = DRIFT_WINDOW,
) -> list[Row]:
    """Return ``n`` synthetic transactions (dicts, time-ordered); see the module doc."""
    if n < 0 or n_cards < 1 or n_merchants < 1 or mean_gap_s <= 0 or drift_window < 1:
        raise ValueError("need n >= 0, n_cards >= 1, n_merchants >= 1, mean_gap_s > 0, drift_window >= 1")
    if not 0.0 <= fraud_rate <= 1.0:
        raise ValueError(f"fraud_rate must be in [0, 1], got {fraud_rate}")
    if drift_kind not in ("abrupt", "gradual"):
        raise ValueError(f"drift_kind must be 'abrupt' or 'gradual', got {drift_kind!r}")
    drift = sorted(int(d) for d in drift_at)
    if drift and drift[0] < 0:
        raise ValueError("drift_at indices must be >= 0")
    rng = np.random.default_rng(seed)

    # Bursts (velocity fraud): lengths first, so the base stream gets the rest of n.
    burst_lens: list[int] = []
    if velocity_fraud:
        n_bursts = round(n * fraud_rate * VELOCITY_SHARE / (sum(BURST_LEN) / 2))
        burst_lens = rng.integers(BURST_LEN[0], BURST_LEN[1] + 1, n_bursts).tolist()
        while sum(burst_lens) > n:
            burst_lens.pop()
    n_base = n - sum(burst_lens)
    sig_rate = fraud_rate * (1 - VELOCITY_SHARE) if velocity_fraud else fraud_rate

    gaps = rng.exponential(mean_gap_s, n_base)
    gaps[:1] = 0.0
    time = start_time + np.cumsum(gaps)
    is_sig = rng.random(n_base) < sig_rate
    card = rng.integers(0, n_cards, n_base)

    end = float(time[-1]) if n_base else start_time
    times, cards = [time], [card]
    for length in burst_lens:
        t0 = rng.uniform(start_time, end)
        times.append(t0 + np.concatenate([[0.0], np.cumsum(rng.uniform(*BURST_GAP_S, length - 1))]))
        cards.append(np.full(length, rng.integers(0, n_cards)))
    n_extra = n - n_base
    time, card = np.concatenate(times), np.concatenate(cards)
    is_sig = np.concatenate([is_sig, np.zeros(n_extra, dtype=bool)])
    is_burst = np.concatenate([np.zeros(n_base, dtype=bool), np.ones(n_extra, dtype=bool)])
    order = np.argsort(time, kind="stable")
    time, is_sig, is_burst, card = time[order], is_sig[order], is_burst[order], card[order]

    merchant = rng.integers(0, n_merchants, n)
    concept = _concepts(n, drift, drift_kind, drift_window, rng.random(n)) % len(CONCEPTS)
    V = rng.standard_normal((n, 28))
    strength = rng.uniform(*STRENGTH_RANGE, n)
    z = rng.standard_normal(n)

    legit_mu = np.log([c.legit_amount_median for c in CONCEPTS])[concept]
    fraud_mu = np.log([c.fraud_amount_median for c in CONCEPTS])[concept]
    amount = np.where(is_sig, np.exp(fraud_mu + FRAUD_AMOUNT_SIGMA * z),
                      np.exp(legit_mu + LEGIT_AMOUNT_SIGMA * z))
    for k, c in enumerate(CONCEPTS):
        rows_k = is_sig & (concept == k)
        for col, shift in c.signature.items():
            j = int(col[1:]) - 1
            V[rows_k, j] += shift * strength[rows_k]

    num = np.column_stack([time.round(3), V.round(6), amount.round(2)]).tolist()
    y = (is_sig | is_burst).astype(int).tolist()
    names = CSV_COLUMNS[:-1]
    out: list[Row] = []
    for values, cls, c_id, m_id in zip(num, y, card.tolist(), merchant.tolist()):
        rec: Row = dict(zip(names, values))
        rec["Class"] = cls
        if include_ids:
            rec["card_id"] = f"card-{c_id:06d}"
            rec["merchant_id"] = f"m-{m_id:04d}"
        out.append(rec)
    return out


def write_csv(rows: Iterable[Mapping[str, object]], path: str | os.PathLike[str]) -> int:
    """Write rows (as from :func:`generate`) to ``path`` with a header; return the row count.

    The header is ``CSV_COLUMNS`` plus ``ID_COLUMNS`` when the first row has them,
    so the file can be read back with :func:`app.data.ulb.iter_rows`.
    """
    it = iter(rows)
    first = next(it, None)
    header = CSV_COLUMNS + (ID_COLUMNS if first is not None and "card_id" in first else [])
    count = 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        if first is not None:
            for rec in chain([first], it):
                w.writerow([rec[c] for c in header])
                count += 1
    return count
