"""Window features on the Handbook's simulator: what they are worth and what they cost.

    python -m benchmarks.windows                          # the small configuration, the configured model
    python -m benchmarks.windows --config published --kind arf+lr

1. **Plain loop** (:func:`run_loop`, :mod:`evaluation.windows`): the same model, test-then-train in
   this process over the simulator's transactions in event-time order, each label received
   ``--label-delay-days`` (7) after its transaction; once with the window features
   (``settings``' :func:`app.configured.transaction_features`) and once on the raw input
   (``Amount``) alone. Exact ROC-AUC, average precision and Card Precision@100 over the test weeks
   (the Handbook's four from 2018-08-08 when the stream covers them, else its last four; known
   compromised cards left out) and over the whole stream; events/s of each loop.
2. **Service** (:func:`run_service`): not measured by this script yet; its keys (``service_eps``,
   ``ratio``, ``windows_cost_ratio``) are printed as ``nan`` and the script says so.

Configurations (``--config``): ``small`` (:data:`app.data.simulator.SMALL`: 500 customers, 1,000
terminals, 60 days, same rules) and ``published`` (the Handbook's: about 1.75 million transactions).

Last line: ``ap_windows ap_raw roc_windows roc_raw cp100_windows service_eps loop_eps ratio
windows_cost_ratio`` (the ``ap_``, ``roc_``, ``cp100_`` figures over the test weeks; ``loop_eps``
with windows; ``ratio`` = service / loop; ``windows_cost_ratio`` = the service's events/s with
windows on / off), then ``cp100_raw stream_ap_windows stream_ap_raw stream_roc_windows
stream_roc_raw stream_cp100_windows stream_cp100_raw loop_raw_eps loop_windows_cost_ratio
card_state_bytes terminal_state_bytes transactions frauds config kind trees label_delay_days``
(``card_state_bytes`` / ``terminal_state_bytes``: the mean size of a card's / terminal's state as
JSON at the end of the stream).
"""
from __future__ import annotations

import argparse
import json
import math
import sys

import numpy as np

import settings
from app import configured
from app.data import simulator
from app.learning import OnlineLearner
from app.testing.figures import key_values
from evaluation import windows as ev


def run_loop(sim: simulator.Simulation, kind: str, trees: int, label_delay_s: float, with_windows: bool) -> tuple:
    """One plain prequential loop (windows on or off): ``(scores, metrics)``."""
    factory = configured.model_factory(settings, kind=kind, trees=trees)
    features = configured.transaction_features(settings) if with_windows else None
    name = "windows" if with_windows else "raw"

    def progress(n: int, elapsed: float) -> None:
        print(f"[loop {name}] {n:,}/{len(sim):,} transactions, {n / elapsed:.0f} ev/s", flush=True)

    scores = ev.prequential(sim.rows(), OnlineLearner(factory), features, raw_names=("Amount",),
                            label_delay=label_delay_s, progress=progress)
    metrics = ev.evaluate(scores, label_delay=label_delay_s)
    for week in metrics["weeks"]:
        print(f"[loop {name}] week {ev.week_label(week['start'])}: ROC-AUC {week['roc_auc']:.4f} "
              f"AP {week['ap']:.4f} CP@100 {week['cp100']:.4f} ({week['transactions']:,} transactions, "
              f"{week['frauds']} frauds, {week['left_out']} of known compromised cards left out)")
    t, s = metrics["test"], metrics["stream"]
    print(f"[loop {name}] test weeks: ROC-AUC {t['roc_auc']:.4f} AP {t['ap']:.4f} CP@100 {t['cp100']:.4f}; "
          f"whole stream: ROC-AUC {s['roc_auc']:.4f} AP {s['ap']:.4f} CP@100 {s['cp100']:.4f}; "
          f"{scores.eps:.0f} ev/s", flush=True)
    return scores, metrics


def state_bytes(states: dict) -> float:
    """Mean size of the states as compact JSON (what a table's value holds)."""
    if not states:
        return math.nan
    return float(np.mean([len(json.dumps(v, separators=(",", ":"))) for v in states.values()]))


def run_service(*_args, **_kwargs) -> dict | None:
    """The service part (``faust -A app worker`` on the local stack): not part of this script yet.
    Returns ``None``; :func:`main` prints its figures as ``nan``."""
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.windows", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", choices=sorted(simulator.CONFIGS), default="small", help="simulator configuration")
    p.add_argument("--seed", type=int, default=0, help="simulator seed")
    p.add_argument("--kind", default=None, help="model kind: arf, lr, arf+lr (default: the setting)")
    p.add_argument("--trees", type=int, default=None, help="ARF trees (default: the setting)")
    p.add_argument("--label-delay-days", type=float, default=7.0, help="labels come this long after their transaction")
    args = p.parse_args(argv)
    kind = args.kind or settings.MODEL_KIND
    trees = args.trees or settings.ARF_TREES
    delay = args.label_delay_days * ev.DAY_S

    sim = simulator.load(simulator.CONFIGS[args.config], seed=args.seed)
    print(simulator.format_summary(simulator.summary(sim)), flush=True)
    print(f"[setup] model {kind} (trees {trees}); window features {configured.transaction_features(settings)!r}; "
          f"labels {args.label_delay_days:g} days late", flush=True)

    on, on_metrics = run_loop(sim, kind, trees, delay, with_windows=True)
    off, off_metrics = run_loop(sim, kind, trees, delay, with_windows=False)
    driver = on.stats["driver"]
    card_b, terminal_b = state_bytes(driver.cards), state_bytes(driver.terminals)
    print(f"[state] {len(driver.cards):,} cards, {card_b:.0f} bytes each as JSON; {len(driver.terminals):,} "
          f"terminals, {terminal_b:.0f} bytes each; 10 million cards: {card_b * 1e7 / 1e9:.1f} GB", flush=True)

    service = run_service()
    if service is None:
        print("[service] not measured by this script: service_eps, ratio and windows_cost_ratio are nan", flush=True)
        service = {}
    service_eps = service.get("service_eps", math.nan)
    t_on, t_off, s_on, s_off = on_metrics["test"], off_metrics["test"], on_metrics["stream"], off_metrics["stream"]
    print(key_values(
        ap_windows=t_on["ap"], ap_raw=t_off["ap"], roc_windows=t_on["roc_auc"], roc_raw=t_off["roc_auc"],
        cp100_windows=t_on["cp100"], service_eps=service_eps, loop_eps=on.eps, ratio=service_eps / on.eps,
        windows_cost_ratio=service.get("windows_cost_ratio", math.nan), cp100_raw=t_off["cp100"],
        stream_ap_windows=s_on["ap"], stream_ap_raw=s_off["ap"], stream_roc_windows=s_on["roc_auc"],
        stream_roc_raw=s_off["roc_auc"], stream_cp100_windows=s_on["cp100"], stream_cp100_raw=s_off["cp100"],
        loop_raw_eps=off.eps, loop_windows_cost_ratio=on.eps / off.eps, card_state_bytes=card_b,
        terminal_state_bytes=terminal_b, transactions=len(sim), frauds=sim.frauds, config=args.config, kind=kind,
        trees=trees, label_delay_days=args.label_delay_days))
    return 0


if __name__ == "__main__":
    sys.exit(main())
