"""Evaluate the drift monitor on streams with known change points.

    python -m app.drift                        # the full suite (River generators, cards, ULB)
    python -m app.drift --size quick --no-ulb  # seconds; no ULB file needed
    python -m app.drift --delta 0.0001 --mitigation challenger

Prints one line per run and, last, the summary as ``key=value`` pairs.
"""
from __future__ import annotations

import argparse

import settings
from app.drift.evaluation import evaluate, summary_line
from app.drift.mitigation import MITIGATIONS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.drift", description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=("quick", "full"), default="full")
    parser.add_argument("--no-ulb", action="store_true", help="skip the ULB streams")
    parser.add_argument("--delta", type=float, default=settings.DRIFT_DELTA)
    parser.add_argument("--clock", type=int, default=settings.DRIFT_CLOCK)
    parser.add_argument("--warning-delta", type=float, default=settings.DRIFT_WARNING_DELTA)
    parser.add_argument("--mitigation", choices=[m for m in MITIGATIONS if m != "none"], default="reset")
    parser.add_argument("--tolerance", type=int, default=5000, help="events after a change an alarm counts as true")
    args = parser.parse_args(argv)
    summary = evaluate(args.size, ulb=not args.no_ulb, mitigation=args.mitigation, delta=args.delta,
                       clock=args.clock, warning_delta=args.warning_delta, tolerance=args.tolerance)
    print(summary_line(summary, args.mitigation))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
