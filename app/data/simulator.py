"""The transaction simulator of the *Reproducible Machine Learning for Credit Card Fraud Detection -
Practical Handbook* (Le Borgne, Siblini, Lebichot, Bontempi; chapter 3), reimplemented with numpy.

Unlike the ULB file, its transactions carry a customer (the card) and a terminal, and its frauds
follow rules that only per-card and per-terminal history reveals, so window features matter.

Rules (as published)
--------------------
* **Customers**: location ``x, y ~ U(0, 100)``; mean amount ``~ U(5, 100)`` with standard deviation
  half of it; mean transactions per day ``~ U(0, 4)``.  **Terminals**: ``x, y ~ U(0, 100)``.  A
  customer uses the terminals at Euclidean distance below ``radius``.
* **Transactions**, per customer and day: ``Poisson(mean per day)`` of them; the second of the day
  is ``int(N(43200, 20000))``, and draws outside ``(0, 86400)`` are dropped; the amount is
  ``N(mean, std)``, a negative draw replaced by ``U(0, 2 * mean)``, rounded to cents; the terminal is
  uniform among the customer's (a customer with none in reach makes no transaction).
* **Frauds**, scenario by scenario (a later one overrides an earlier one's mark):
  (1) every amount above 220;
  (2) each day, 2 random terminals are compromised: all their transactions that day and the 27
  days after are fraud;
  (3) each day, 3 random customers are compromised: a third (rounded down) of their transactions
  that day and the 13 days after, drawn at random, have their amount multiplied by 5 and are fraud.

The published configuration (:data:`PUBLISHED`: 5,000 customers, 10,000 terminals, 183 days from
2018-04-01, radius 5) gave 1,754,155 transactions and 14,681 frauds (0.84%).  The Handbook seeds
each customer's draws separately; here one ``numpy.random.default_rng(seed)`` draws everything, so
the rows are not the Handbook's, but the same seed always gives the same rows.

>>> sim = simulate(SimulatorConfig(n_customers=50, n_terminals=100, n_days=10), seed=1)
>>> sim == simulate(SimulatorConfig(n_customers=50, n_terminals=100, n_days=10), seed=1)
True
>>> bool(np.all(np.diff(sim.event_time) >= 0)), bool(np.all(sim.fraud[sim.amount > 220] == 1))
(True, True)
>>> sorted(next(sim.rows()))
['Amount', 'Class', 'card_id', 'event_time', 'fraud_scenario', 'terminal_id', 'transaction_index']
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .ulb import default_cache_dir

SECONDS_PER_DAY = 86_400
TIME_OF_DAY_MEAN_S = 43_200.0
TIME_OF_DAY_STD_S = 20_000.0
FRAUD_AMOUNT_ABOVE = 220.0  # scenario 1
TERMINALS_PER_DAY, TERMINAL_DAYS = 2, 28  # scenario 2
CUSTOMERS_PER_DAY, CUSTOMER_DAYS, CUSTOMER_ONE_IN, AMOUNT_FACTOR = 3, 14, 3, 5.0  # scenario 3

#: The Handbook's counts for :data:`PUBLISHED` (its chapter 3).
PUBLISHED_TRANSACTIONS = 1_754_155
PUBLISHED_FRAUDS = 14_681

#: Bumped whenever a rule or a draw changes, so that cached files of the old rules are not reused.
FORMAT_VERSION = 1

_COLUMNS = ("event_time", "customer_id", "terminal_id", "amount", "fraud", "scenario")


@dataclass(frozen=True)
class SimulatorConfig:
    """How many customers, terminals and days, from which date, and the customers' reach."""

    n_customers: int = 5_000
    n_terminals: int = 10_000
    n_days: int = 183
    start_date: str = "2018-04-01"  # midnight UTC of day 0
    radius: float = 5.0

    def __post_init__(self) -> None:
        if self.n_customers < CUSTOMERS_PER_DAY or self.n_terminals < TERMINALS_PER_DAY:
            raise ValueError(f"need at least {CUSTOMERS_PER_DAY} customers and {TERMINALS_PER_DAY} terminals")
        if self.n_days < 1 or not self.radius > 0:
            raise ValueError("need n_days >= 1 and radius > 0")
        dt.date.fromisoformat(self.start_date)  # raises ValueError when it is not a date

    @property
    def start_epoch(self) -> int:
        """Epoch seconds of ``start_date`` at midnight UTC.

        >>> SimulatorConfig().start_epoch
        1522540800
        """
        day = dt.date.fromisoformat(self.start_date)
        return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp())

    def cache_name(self, seed: int) -> str:
        """The cache file of this configuration and ``seed``.

        >>> SMALL.cache_name(3)
        'simulator-v1-c500-t1000-d60-r5-2018-04-01-seed3.npz'
        """
        return (f"simulator-v{FORMAT_VERSION}-c{self.n_customers}-t{self.n_terminals}-d{self.n_days}"
                f"-r{self.radius:g}-{self.start_date}-seed{seed}.npz")


#: The Handbook's configuration (about 1.75 million transactions).
PUBLISHED = SimulatorConfig()
#: Same rules, about 55 thousand transactions: for quick runs and tests.
SMALL = SimulatorConfig(n_customers=500, n_terminals=1_000, n_days=60)
CONFIGS = {"published": PUBLISHED, "small": SMALL}


@dataclass(frozen=True, eq=False)
class Simulation:
    """The simulated transactions as columns, sorted by event time (a row's index is its id).

    ``event_time`` is in epoch seconds; ``scenario`` is 0 for a genuine transaction, else the
    fraud scenario (1-3) that marked it. ``compromised_terminals[d]`` and
    ``compromised_customers[d]`` are the terminals and customers compromised on day ``d``.
    """

    config: SimulatorConfig
    seed: int
    event_time: np.ndarray  # int64
    customer_id: np.ndarray  # int32
    terminal_id: np.ndarray  # int32
    amount: np.ndarray  # float64, cents
    fraud: np.ndarray  # int8, 0 or 1
    scenario: np.ndarray  # int8, 0..3
    compromised_terminals: np.ndarray  # int32 [n_days, 2]
    compromised_customers: np.ndarray  # int32 [n_days, 3]

    def __len__(self) -> int:
        return len(self.event_time)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Simulation):
            return NotImplemented
        return (self.config == other.config and self.seed == other.seed
                and all(np.array_equal(getattr(self, f), getattr(other, f)) for f in _ARRAYS))

    @property
    def day(self) -> np.ndarray:
        """The day (0-based) of each transaction."""
        return (self.event_time - self.config.start_epoch) // SECONDS_PER_DAY

    @property
    def frauds(self) -> int:
        return int(self.fraud.sum())

    def rows(self, start: int = 0, stop: int | None = None) -> Iterator[dict]:
        """Rows ``start:stop`` as dicts: ``transaction_index``, ``event_time`` (float epoch seconds),
        ``card_id`` (the customer), ``terminal_id``, ``Amount``, ``Class`` and ``fraud_scenario``."""
        sl = slice(start, stop)
        columns = zip(range(*sl.indices(len(self))), self.event_time[sl].tolist(), self.customer_id[sl].tolist(),
                      self.terminal_id[sl].tolist(), self.amount[sl].tolist(), self.fraud[sl].tolist(),
                      self.scenario[sl].tolist())
        for index, time, customer, terminal, amount, fraud, scenario in columns:
            yield {"transaction_index": index, "event_time": float(time), "card_id": card_key(customer),
                   "terminal_id": terminal_key(terminal), "Amount": amount, "Class": fraud,
                   "fraud_scenario": scenario}


_ARRAYS = tuple(f.name for f in dataclasses.fields(Simulation) if f.name not in ("config", "seed"))


def card_key(customer: int) -> str:
    """The card id of a customer on the wire.

    >>> card_key(42)
    'cust-000042'
    """
    return f"cust-{customer:06d}"


def terminal_key(terminal: int) -> str:
    """The terminal id on the wire.

    >>> terminal_key(7)
    'term-000007'
    """
    return f"term-{terminal:06d}"


def _terminals_in_reach(customers_xy: np.ndarray, terminals_xy: np.ndarray, radius: float,
                        chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Each customer's terminals (distance < radius) in CSR form: ``indptr`` [C + 1], ``indices``."""
    counts, found = [], []
    r2 = radius * radius
    for lo in range(0, len(customers_xy), chunk):
        block = customers_xy[lo:lo + chunk]
        d2 = ((block[:, None, :] - terminals_xy[None, :, :]) ** 2).sum(axis=2)
        rows, cols = np.nonzero(d2 < r2)  # row-major: each customer's terminals in ascending order
        counts.append(np.bincount(rows, minlength=len(block)))
        found.append(cols)
    indptr = np.concatenate([[0], np.cumsum(np.concatenate(counts))]).astype(np.int64)
    return indptr, np.concatenate(found).astype(np.int32)


def simulate(config: SimulatorConfig = PUBLISHED, seed: int = 0) -> Simulation:
    """Simulate ``config`` with ``seed`` (see the module doc for the rules); nothing is cached."""
    rng = np.random.default_rng(seed)
    n_c, n_t, n_d = config.n_customers, config.n_terminals, config.n_days

    # Profiles.
    customers_xy = rng.uniform(0, 100, (n_c, 2))
    mean_amount = rng.uniform(5, 100, n_c)
    std_amount = mean_amount / 2
    mean_per_day = rng.uniform(0, 4, n_c)
    terminals_xy = rng.uniform(0, 100, (n_t, 2))
    indptr, reach = _terminals_in_reach(customers_xy, terminals_xy, config.radius)
    n_reach = np.diff(indptr)

    # Transactions: counts per (customer, day), then one draw per transaction.
    counts = rng.poisson(np.broadcast_to(mean_per_day[:, None], (n_c, n_d)))
    counts[n_reach == 0] = 0
    customer = np.repeat(np.arange(n_c, dtype=np.int32), counts.sum(axis=1))
    day = np.repeat(np.tile(np.arange(n_d, dtype=np.int64), n_c), counts.ravel())
    second = np.trunc(rng.normal(TIME_OF_DAY_MEAN_S, TIME_OF_DAY_STD_S, len(customer))).astype(np.int64)
    keep = (second > 0) & (second < SECONDS_PER_DAY)
    customer, day, second = customer[keep], day[keep], second[keep]
    mu, sigma = mean_amount[customer], std_amount[customer]
    amount = rng.normal(mu, sigma)
    negative = amount < 0
    amount[negative] = rng.uniform(0, 2 * mu[negative])
    amount = np.round(amount, 2)
    pick = np.floor(rng.random(len(customer)) * n_reach[customer]).astype(np.int64)
    terminal = reach[indptr[customer] + pick]

    order = np.argsort(day * SECONDS_PER_DAY + second, kind="stable")
    customer, day, second, amount, terminal = customer[order], day[order], second[order], amount[order], terminal[order]
    fraud = np.zeros(len(customer), dtype=np.int8)
    scenario = np.zeros(len(customer), dtype=np.int8)

    # Scenario 1: large amounts.
    large = amount > FRAUD_AMOUNT_ABOVE
    fraud[large], scenario[large] = 1, 1

    # Scenario 2: terminals compromised for TERMINAL_DAYS days from the day they are picked.
    bad_terminals = np.stack([rng.choice(n_t, TERMINALS_PER_DAY, replace=False) for _ in range(n_d)]).astype(np.int32)
    picked = np.zeros((n_t, n_d + 1), dtype=np.int32)  # picked[t, d + 1]: t picked on day d
    np.add.at(picked, (bad_terminals, np.arange(1, n_d + 1)[:, None]), 1)
    picked = np.cumsum(picked, axis=1)  # picked[t, d + 1] - picked[t, max(0, d + 1 - W)]: picks in (d - W, d]
    hit = (picked[terminal, day + 1] - picked[terminal, np.maximum(0, day + 1 - TERMINAL_DAYS)]) > 0
    fraud[hit], scenario[hit] = 1, 2

    # Scenario 3: a third of a compromised customer's transactions, amount x 5.
    bad_customers = np.stack([rng.choice(n_c, CUSTOMERS_PER_DAY, replace=False) for _ in range(n_d)]).astype(np.int32)
    by_customer = np.argsort(customer, kind="stable")  # within a customer: in time order
    starts = np.searchsorted(customer[by_customer], np.arange(n_c + 1))
    for d in range(n_d):
        window = []
        for c in bad_customers[d]:
            rows = by_customer[starts[c]:starts[c + 1]]
            lo, hi = np.searchsorted(day[rows], [d, d + CUSTOMER_DAYS])
            window.append(rows[lo:hi])
        window = np.concatenate(window)
        chosen = rng.choice(window, len(window) // CUSTOMER_ONE_IN, replace=False)
        amount[chosen] = np.round(amount[chosen] * AMOUNT_FACTOR, 2)
        fraud[chosen], scenario[chosen] = 1, 3

    return Simulation(
        config=config, seed=seed, event_time=config.start_epoch + day * SECONDS_PER_DAY + second,
        customer_id=customer, terminal_id=terminal.astype(np.int32), amount=amount, fraud=fraud,
        scenario=scenario, compromised_terminals=bad_terminals, compromised_customers=bad_customers,
    )


def _save(sim: Simulation, path: Path) -> None:
    part = path.with_name(f"{path.name}.{os.getpid()}.part")  # another process may be writing it too
    with open(part, "wb") as f:
        np.savez_compressed(f, **{name: getattr(sim, name) for name in _ARRAYS})
    os.replace(part, path)


def _read(path: Path, config: SimulatorConfig, seed: int) -> Simulation:
    with np.load(path) as data:
        return Simulation(config=config, seed=seed, **{name: data[name] for name in _ARRAYS})


def cache_path(config: SimulatorConfig = PUBLISHED, seed: int = 0,
               cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where :func:`load` keeps the simulation of ``config`` and ``seed``."""
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return cache / config.cache_name(seed)


def load(config: SimulatorConfig = PUBLISHED, seed: int = 0, cache_dir: str | os.PathLike[str] | None = None,
         progress: bool = True) -> Simulation:
    """The simulation of ``config`` and ``seed``, read from the cache or simulated and cached.

    The cache is :func:`cache_path`, ``<cache_dir>/<config.cache_name(seed)>`` (``cache_dir``
    defaults to the ULB file's, :func:`app.data.ulb.default_cache_dir`): a compressed numpy archive
    of the columns (numpy is all it needs; 16 MB and under a second to read for the published
    configuration).  A file that cannot be read is simulated and written again.
    """
    path = cache_path(config, seed, cache_dir)
    if path.is_file():
        try:
            sim = _read(path, config, seed)
            _log(progress, f"cached at {path}")
            return sim
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
            _log(progress, f"{path} is unreadable ({exc}); simulating again")
    _log(progress, f"simulating {config} with seed {seed} ...")
    sim = simulate(config, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    _save(sim, path)
    _log(progress, f"cached at {path}")
    return sim


def summary(sim: Simulation) -> dict[str, float]:
    """Counts of ``sim``, and for :data:`PUBLISHED` the Handbook's beside them with the ratios."""
    n, frauds = len(sim), sim.frauds
    out: dict[str, float] = {"transactions": n, "frauds": frauds, "fraud_rate": frauds / n if n else 0.0}
    for k in (1, 2, 3):
        out[f"scenario_{k}"] = int((sim.scenario == k).sum())
    if sim.config == PUBLISHED:
        out["published_transactions"] = PUBLISHED_TRANSACTIONS
        out["published_frauds"] = PUBLISHED_FRAUDS
        out["transactions_ratio"] = n / PUBLISHED_TRANSACTIONS
        out["frauds_ratio"] = frauds / PUBLISHED_FRAUDS
    return out


def format_summary(counts: dict[str, float]) -> str:
    """:func:`summary` as lines of text."""
    lines = [f"transactions {counts['transactions']:>10,}", f"frauds       {counts['frauds']:>10,} "
             f"({100 * counts['fraud_rate']:.2f}%; scenarios 1/2/3: {counts['scenario_1']:,}/"
             f"{counts['scenario_2']:,}/{counts['scenario_3']:,})"]
    if "published_transactions" in counts:
        lines[0] += f"   published {counts['published_transactions']:>10,}   ratio {counts['transactions_ratio']:.3f}"
        lines[1] += (f"   published {counts['published_frauds']:,} "
                     f"({100 * counts['published_frauds'] / counts['published_transactions']:.2f}%)"
                     f"   ratio {counts['frauds_ratio']:.3f}")
    return "\n".join(lines)


def _log(progress: bool, msg: str) -> None:
    if progress:
        print(f"[data] {msg}", file=sys.stderr, flush=True)
