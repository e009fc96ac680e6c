"""Command line: ``python -m app.data {fetch,synth,simulate}``.

``fetch [--path P] [--cache-dir D] [--quiet]`` prints the path of the verified ULB CSV.
``synth --rows N --seed S --out F [--drift-at I ...] [--drift-kind K]
[--velocity-fraud] [--fraud-rate R] [--no-ids]`` writes a synthetic CSV.
``simulate [--config published|small] [--customers N] [--terminals N] [--days N] [--radius R]
[--start-date D] [--seed S] [--cache-dir D]`` runs the Handbook's transaction simulator (cached),
prints its counts (beside the published ones for the published configuration) and the cache path.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from . import simulator
from .synthetic import generate, write_csv
from .ulb import DatasetError, ensure_creditcard_csv


def _indices(text: str) -> list[int]:
    """``"1000,5000"`` -> ``[1000, 5000]`` (also accepts one index per argument)."""
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m app.data", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="download/verify the ULB creditcard.csv, print its path")
    f.add_argument("--path", help="use this existing CSV (only its header is checked)")
    f.add_argument("--cache-dir", help="cache directory (default: $FRAUD_DATASET_DIR or <repo>/.data)")
    f.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    s = sub.add_parser("synth", help="write a synthetic CSV")
    s.add_argument("--rows", type=int, required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True)
    s.add_argument("--drift-at", type=_indices, nargs="*", default=[], metavar="I[,I...]")
    s.add_argument("--drift-kind", choices=["abrupt", "gradual"], default="abrupt")
    s.add_argument("--velocity-fraud", action="store_true")
    s.add_argument("--fraud-rate", type=float, default=0.0017)
    s.add_argument("--no-ids", action="store_true", help="omit card_id/merchant_id")
    m = sub.add_parser("simulate", help="the Handbook's transaction simulator: simulate (or read the cache), print counts")
    m.add_argument("--config", choices=sorted(simulator.CONFIGS), default="published",
                   help="the published configuration (default) or a small one; the options below override it")
    m.add_argument("--customers", type=int)
    m.add_argument("--terminals", type=int)
    m.add_argument("--days", type=int)
    m.add_argument("--radius", type=float)
    m.add_argument("--start-date", help="YYYY-MM-DD (day 0, midnight UTC)")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--cache-dir", help="cache directory (default: $FRAUD_DATASET_DIR or <repo>/.data)")
    m.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = ap.parse_args(argv)

    if args.cmd == "simulate":
        return _simulate(args)
    if args.cmd == "fetch":
        try:
            path = ensure_creditcard_csv(args.path, args.cache_dir, progress=not args.quiet)
        except DatasetError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        print(path)
        return 0

    drift = [i for group in args.drift_at for i in group]
    rows = generate(args.rows, seed=args.seed, fraud_rate=args.fraud_rate, drift_at=drift,
                    drift_kind=args.drift_kind, velocity_fraud=args.velocity_fraud,
                    include_ids=not args.no_ids)
    n = write_csv(rows, args.out)
    print(f"wrote {n} rows ({sum(r['Class'] for r in rows)} fraud) to {args.out}", file=sys.stderr)
    print(args.out)
    return 0


def _simulate(args: argparse.Namespace) -> int:
    over = {"n_customers": args.customers, "n_terminals": args.terminals, "n_days": args.days,
            "radius": args.radius, "start_date": args.start_date}
    try:
        config = dataclasses.replace(simulator.CONFIGS[args.config], **{k: v for k, v in over.items() if v is not None})
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    sim = simulator.load(config, args.seed, args.cache_dir, progress=not args.quiet)
    print(simulator.format_summary(simulator.summary(sim)))
    print(simulator.cache_path(config, args.seed, args.cache_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
