"""Drift monitoring, measured on streams with known change points (offline: no broker needed).

    .venv/bin/python benchmarks/drift.py [--size quick|full] [--no-ulb] [--mitigation reset|challenger] [--fresh-only]

Runs :func:`evaluation.drift.evaluate` with the settings' drift defaults, every stream watched
the way the drift agent watches it (input features, score and error together): detection delay on
abrupt drifts (River SEA/Agrawal ``ConceptDriftStream``, the synthetic card stream's concept and
Amount changes, the ULB file with Amount scaled or the V columns permuted from a known offset),
false alarms of all monitored streams on stationary streams, and PR-AUC after a concept drift
without and with mitigation. Same-run baselines: each scenario scored on one stream kind only
(``baseline_*``: Amount for input shifts, the error for concept drifts), ADWIN on the raw
(untransformed) Amount of the same stationary streams, the prequential runs without mitigation,
and the ULB in time order without a shift (``ulb-control``: what alarms by chance after row 50,000).
Then a fresh start (:func:`evaluation.drift.fresh_start`): the service's own model from scratch,
alerts per 100,000 events on stationary streams (``fresh_*``: the synthetic card stream and the ULB
rows shuffled, 100,000 events each) and the delay on the card stream with a concept change.
The last line is the key=value summary.
"""
from __future__ import annotations

import argparse
import time

import settings
from evaluation.drift import evaluate, feature_values, fresh_start, monitor_values, suite, summary_line


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", choices=("quick", "full"), default="full")
    parser.add_argument("--no-ulb", action="store_true")
    parser.add_argument("--mitigation", choices=("reset", "challenger"), default="reset")
    parser.add_argument("--fresh-only", action="store_true", help="only the fresh start (the service's model)")
    args = parser.parse_args()
    print(f"ADWIN delta={settings.DRIFT_DELTA} clock={settings.DRIFT_CLOCK} features={settings.DRIFT_FEATURES} "
          f"transform={settings.DRIFT_FEATURE_TRANSFORM} score={settings.DRIFT_SCORE_DIRECTION} "
          f"error={settings.DRIFT_ERROR_DIRECTION} settle={settings.DRIFT_SETTLE_EVENTS} model={settings.MODEL_KIND}",
          flush=True)
    if args.fresh_only:
        started = time.perf_counter()
        summary = fresh_start(args.size, ulb=not args.no_ulb, progress=lambda line: print(line, flush=True))
        print(f"fresh start took {time.perf_counter() - started:.0f} s (2 shared cores: noisy)")
        print(summary_line(summary, "none"))
        return
    started = time.perf_counter()
    summary = evaluate(args.size, ulb=not args.no_ulb, mitigation=args.mitigation,
                       warning_delta=settings.DRIFT_WARNING_DELTA,
                       progress=lambda line: print(line, flush=True))
    elapsed = time.perf_counter() - started
    raw_false = raw_events = 0
    for stream in suite(args.size, ulb=not args.no_ulb)["input"]:
        if stream.kind == "stationary":
            score, _ = monitor_values(feature_values(stream), [], 5000, transform="identity")
            raw_false += score.false_alarms
            raw_events += score.n_events
    print(f"baseline: raw Amount (no transform) on the same stationary streams: {raw_false} false alarms "
          f"in {raw_events} events = {1e5 * raw_false / max(raw_events, 1):.2f} per 100k")
    fresh_started = time.perf_counter()
    summary.update(fresh_start(args.size, ulb=not args.no_ulb, progress=lambda line: print(line, flush=True)))
    print(f"evaluation took {elapsed:.0f} s, the fresh start {time.perf_counter() - fresh_started:.0f} s "
          f"(2 shared cores: noisy)")
    print(summary_line(summary, args.mitigation))


if __name__ == "__main__":
    main()
