"""What pickling a River model does to its speed, and what reading it back laid out as new does.

    python -m benchmarks.layout
    python -m benchmarks.layout --train-rows 10000 --rows 20000 --rounds 3

In this process, no Kafka. A model is built and trained on the first ``--train-rows`` ULB rows,
then goes on, in one of four states, through the next ``--rows`` (predict, then learn: the CPU µs
per event of that part is the figure):

* ``new``: as trained, never pickled (what a plain loop runs);
* ``pickled``: pickled once with :func:`pickle.dumps` (what a checkpoint used to leave behind);
* ``restored``: read back from :func:`pickle.dumps` with :func:`pickle.loads` (a model restored
  from a checkpoint written that way);
* ``read_back``: read back with :func:`pickle.loads` from :func:`app.learning.layout.dumps` (what
  a checkpoint leaves behind and restores now).

Two models: ARF with ``--trees`` trees (the scoring model of ``benchmarks.scoring --kind arf``)
and the anomaly agent's Half-Space-Trees detector with the settings' parameters. Each state of a
model starts from its own copy trained alike (same seed, same rows); the four run in turn,
``--rounds`` times, and the best of each is kept. The last line gives each figure and its ratio to
``new`` of the same run (``*_pickled_ratio`` 1.05: 5% slower).
"""
from __future__ import annotations

import argparse
import pickle
import time
from typing import Callable

from app.testing.cpu import load_average
from app.testing.figures import key_values

STATES = ("new", "pickled", "restored", "read_back")


def in_state(model, state: str):
    """``model`` after what ``state`` names (see the module)."""
    from app.learning import layout

    if state == "pickled":
        pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
        return model
    if state == "restored":
        return pickle.loads(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    if state == "read_back":
        return pickle.loads(layout.dumps(model))
    return model


def us_per_event(make: Callable[[], object], step: Callable[[object, dict, int], None], xs: list[dict],
                 ys: list[int], train: int, state: str) -> float:
    """CPU µs per event of ``step`` over ``xs[train:]``, on a model trained on ``xs[:train]``, in ``state``."""
    model = make()
    for x, y in zip(xs[:train], ys[:train]):
        step(model, x, y)
    model = in_state(model, state)
    started = time.process_time()
    for x, y in zip(xs[train:], ys[train:]):
        step(model, x, y)
    return 1e6 * (time.process_time() - started) / (len(xs) - train)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.layout", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-rows", type=int, default=10000, help="ULB rows each model learns first")
    p.add_argument("--rows", type=int, default=20000, help="ULB rows timed after that")
    p.add_argument("--trees", type=int, default=3, help="trees of the ARF model")
    p.add_argument("--rounds", type=int, default=3, help="times the four states run in turn (the best is kept)")
    args = p.parse_args(argv)
    import settings
    from app import configured
    from app.data import ensure_creditcard_csv, iter_rows
    from app.learning import build_model
    from app.records import FEATURE_NAMES

    rows = list(iter_rows(ensure_creditcard_csv(), limit=args.train_rows + args.rows))
    xs = [{name: float(row[name]) for name in FEATURE_NAMES} for row in rows]
    ys = [int(row["Class"]) for row in rows]

    def arf_step(model, x, y):
        model.predict_proba_one(x)
        model.learn_one(x, y)

    models = {
        "arf": (lambda: build_model(kind="arf", trees=args.trees), arf_step),
        "hst": (lambda: configured.anomaly_detector(settings), lambda detector, x, _: detector.process(x)),
    }
    print(f"{len(xs)} ULB rows ({args.train_rows} learned first); load {load_average():.2f}", flush=True)
    best = {(name, state): float("inf") for name in models for state in STATES}
    for round_ in range(1, args.rounds + 1):
        for name, (make, step) in models.items():
            for state in STATES:
                us = us_per_event(make, step, xs, ys, args.train_rows, state)
                best[name, state] = min(best[name, state], us)
                print(f"round {round_}: {name} {state}: {us:.1f} µs per event", flush=True)
    figures = {}
    for name in models:
        new = best[name, "new"]
        for state in STATES:
            figures[f"{name}_{state}_us"] = best[name, state]
            if state != "new":
                figures[f"{name}_{state}_ratio"] = best[name, state] / new
    print(key_values(**figures, train_rows=args.train_rows, rows=args.rows, trees=args.trees, rounds=args.rounds,
                     load=round(load_average(), 2)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
