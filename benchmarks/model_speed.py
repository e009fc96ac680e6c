"""The default model with the project's splitter against the same model with River's own.

    .venv/bin/python benchmarks/model_speed.py                   # 50,000 ULB rows, 2 rounds (~5 minutes)
    .venv/bin/python benchmarks/model_speed.py --rows 284807 --rounds 1

Both are the configured ``build_model`` (settings: kind, trees, seed...); the baseline passes
``splitter=river.tree.splitter.GaussianSplitter()``, what River's forest uses when given none. Each
round runs the plain predict-then-learn loop of ``benchmarks/scoring.py`` (:func:`app.testing.baseline.plain_loop`) over the same ULB rows with the baseline, then with
the project's :class:`app.learning.splitter.GaussianSplitter`, on one core, timed by the process's
CPU clock (the machine is shared; wall-clock rates are printed beside). Every probability of both
models is compared: the speed-up is only worth having if they are identical.

The last line holds the figures as ``key=value`` pairs: ``river_eps`` and ``eps`` are events per
CPU second (best round of each), ``speedup`` their ratio, ``identical`` 1 if every probability
matched in every round; ``river_checkpoint_mb`` and ``checkpoint_mb`` the size of each trained
model's pickle (the last round's), what a checkpoint of it holds.
"""
from __future__ import annotations

import argparse
import pickle

from app.testing.baseline import plain_loop
from app.testing.cpu import load_average
from app.testing.figures import key_values


def checkpoint_mb(model) -> float:
    """The size of the trained model's pickle (what a checkpoint holds), in MB."""
    return len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)) / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=50_000, help="ULB rows (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=2, help="baseline/project pairs (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.rounds < 1:
        parser.error("--rows and --rounds must be at least 1")

    from river.tree.splitter import GaussianSplitter as RiversSplitter

    import settings
    from app import configured
    from app.data import ensure_creditcard_csv, iter_rows

    params = configured.model_params(settings)
    rows = list(iter_rows(ensure_creditcard_csv(), limit=args.rows))
    n = len(rows)
    print(f"rows={n} model={params}", flush=True)
    best = {"river": 0.0, "project": 0.0}
    sizes = {}
    identical = True
    for i in range(args.rounds):
        print(f"[round {i + 1}] load before: {load_average():.2f}", flush=True)
        figures = {}
        for name, splitter in (("river", RiversSplitter()), ("project", None)):
            loop = plain_loop(rows, {**params, "splitter": splitter})
            figures[name] = loop["p"]
            best[name] = max(best[name], loop["cpu_eps"])
            sizes[name] = checkpoint_mb(loop["model"])
            print(f"[round {i + 1}] {name:7s} splitter: {loop['cpu_eps']:7.1f} events per CPU second "
                  f"({loop['eps']:.1f} per wall second); the trained model pickles to {sizes[name]:.2f} MB",
                  flush=True)
        differing = int((figures["river"] != figures["project"]).sum())
        identical &= differing == 0
        print(f"[round {i + 1}] probabilities that differ: {differing} of {n}; load after {load_average():.2f}",
              flush=True)
    print(key_values(river_eps=best["river"], eps=best["project"], speedup=best["project"] / best["river"],
                     identical=int(identical), river_checkpoint_mb=sizes["river"], checkpoint_mb=sizes["project"],
                     rows=n, rounds=args.rounds, kind=params["kind"],
                     trees=params["trees"]))
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
