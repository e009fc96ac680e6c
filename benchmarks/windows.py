"""Window features on the Handbook's simulator: what they are worth and what they cost.

    python -m benchmarks.windows                          # the small configuration, the configured model
    python -m benchmarks.windows --config published --kind arf+lr

1. **Plain loop** (:func:`run_loop`, :mod:`evaluation.windows`): the same model, test-then-train in
   this process over the simulator's transactions in event-time order, each label received
   ``--label-delay-days`` (7) after its transaction; once with the window features
   (``settings``' :func:`app.configured.transaction_features`, with the amount ratios only when
   ``--amount-ratios`` is given, whatever ``CARD_AMOUNT_RATIOS`` says) and once on the raw input
   (``Amount``) alone. Exact ROC-AUC, average precision and Card Precision@100 over the test weeks
   (the Handbook's four from 2018-08-08 when the stream covers them, else its last four; known
   compromised cards left out) and over the whole stream; events/s of each loop.
2. **Service** (:func:`run_service`): a real worker (``faust -A app worker``, scoring only, the
   settings' partitions and model) on the local stack, fresh topics, once with ``WINDOW_FEATURES``
   on and once off (same run, one after the other), ``CARD_AMOUNT_RATIOS`` as the loops have them;
   the rows replayed by card id (:mod:`app.replay`), flat out or at ``--service-rate`` events/s,
   without ``Class``, each label on the labels topic once a transaction ``--label-delay-days``
   later in event time has been scored (:mod:`app.label_gate`: the replay reads the scores). The
   same metrics of the service's scores; its events/s from the scores' processing times (first to
   last). With ``--labels-free`` the labels go out as soon as that transaction is sent: flat out,
   the labels' consumer then runs ahead of the scorer, a label that comes before its transaction
   is scored is parked and learned with it, with no delay at all, and the service's metrics are
   better than the Handbook's protocol allows (the script counts those labels,
   ``service_early_labels``). ``--no-service`` leaves the service out (its keys are then ``nan``);
   ``--plain windows`` (or ``raw``) runs one loop only, ``--plain none`` neither (the keys of a
   loop not run are ``nan``); ``--service-windows on`` (or ``off``) runs the service once only.

Configurations (``--config``): ``small`` (:data:`app.data.simulator.SMALL`: 500 customers, 1,000
terminals, 60 days, same rules) and ``published`` (the Handbook's: about 1.75 million transactions).

The model: the settings', with the options ``--kind --trees --grace-period --max-features
--arf-lambda --arf-weight --lr-positive-weight --model-seed`` replacing some (the worker gets them
as its settings). ``--amount-ratios``: the card windows' amount ratios (:mod:`app.features.card`)
in the loops' window features and the worker's (its ``CARD_AMOUNT_RATIOS``; without the option,
neither has them). ``--negatives r``: learn every fraud and a share ``r`` of the genuine
transactions (the service too: its ``LEARN_SAMPLE_RATE``, the central learner's with ``--learning
central``, the partition's model's with ``--learning partition``, the default; the loops choose them
by a hash of ``tx-<index>``, the service by a hash of its transaction ids: same share, other
examples). For the loops only: ``--lr-baseline`` (the regression's loop on the same windows, same
run) and ``--label-order replay`` (the labels in the replay's order, after the transaction that made them
due, dropped once their transaction is ``PENDING_TTL_S`` behind: what the service's scorer does;
with the default TTL, equal to the labels' delay, every label sent during the stream is dropped).
``--pending-ttl-days`` sets that TTL for the loops in replay order and for the worker.

Last line: ``ap_windows ap_raw roc_windows roc_raw cp100_windows service_eps loop_eps ratio
windows_cost_ratio`` (the ``ap_``, ``roc_``, ``cp100_`` figures over the test weeks; ``loop_eps``
with windows; ``ratio`` = service / loop; ``windows_cost_ratio`` = the service's events/s with
windows on / off), then ``cp100_raw stream_ap_windows stream_ap_raw stream_roc_windows
stream_roc_raw stream_cp100_windows stream_cp100_raw loop_raw_eps loop_windows_cost_ratio
card_state_bytes terminal_state_bytes transactions frauds config kind trees label_delay_days
negatives loop_order loop_labels_expired pending_ttl_days amount_ratios`` and the model options given
(``card_state_bytes`` / ``terminal_state_bytes``: the mean size of a card's state as the card
table stores it (packed) / of a terminal's state as JSON, at the end of the stream); with ``--lr-baseline`` ``ap_lr roc_lr cp100_lr stream_ap_lr`` (and
``*_lr_ratios`` with ``--amount-ratios``); with the service, its ``service_*`` keys, among them
per run (suffix ``_windows`` or ``_raw``) the labels it learned and dropped as expired
(``service_labels_learned_* service_labels_expired_*``) and how late it learned them in event time
(``service_label_delay_days_*``, the mean; ``service_labels_within_7_25_days_*``).
"""
from __future__ import annotations

from app.testing.single_partition import use_single_partition

use_single_partition()  # before settings: one partition, a model per partition (benchmarks/README.md)

import argparse
import json
import math
import sys
import time

import numpy as np

import settings
from app import configured
from app.data import simulator
from app.features import TransactionFeatures
from app.learning import OnlineLearner
from app.scoring.windows import encode_card
from app.testing.figures import key_values
from evaluation import windows as ev


def run_loop(sim: simulator.Simulation, model: dict, label_delay_s: float, features: TransactionFeatures | None,
             known: str = "week", negatives: float = 1.0, name: str | None = None, order: str = "merged",
             pending_ttl_s: float | None = None, members: bool = False) -> tuple:
    """One plain prequential loop: ``(scores, metrics)`` of the model of ``model`` (the settings'
    with these :func:`app.configured.model_params` replaced) on ``Amount`` plus ``features`` (the
    raw input alone when ``None``), learning a share ``negatives`` of the genuine transactions; the
    labels in ``order`` (:func:`evaluation.windows.prequential`), dropped ``pending_ttl_s`` behind.
    ``members``: also each blend member's probabilities (``scores.stats["members"]``, and its
    ``"member_names"``)."""
    factory = configured.model_factory(settings, **model)
    name = name or ("windows" if features is not None else "raw")

    def progress(n: int, elapsed: float) -> None:
        print(f"[loop {name}] {n:,}/{len(sim):,} transactions, {n / elapsed:.0f} ev/s", flush=True)

    learner = ev.MemberRecorder(OnlineLearner(factory)) if members else OnlineLearner(factory)
    scores = ev.prequential(sim.rows(), learner, features, raw_names=("Amount",),
                            label_delay=label_delay_s, negatives=negatives, order=order, pending_ttl=pending_ttl_s,
                            progress=progress)
    if members:
        scores.stats.update(members=learner.members, member_names=learner.names)
    metrics = ev.evaluate(scores, label_delay=label_delay_s, known=known)
    for week in metrics["weeks"]:
        print(f"[loop {name}] week {ev.week_label(week['start'])}: ROC-AUC {week['roc_auc']:.4f} "
              f"AP {week['ap']:.4f} CP@100 {week['cp100']:.4f} ({week['transactions']:,} transactions, "
              f"{week['frauds']} frauds, {week['left_out']} of known compromised cards left out)")
    t, s = metrics["test"], metrics["stream"]
    print(f"[loop {name}] test weeks: ROC-AUC {t['roc_auc']:.4f} AP {t['ap']:.4f} CP@100 {t['cp100']:.4f}; "
          f"whole stream: ROC-AUC {s['roc_auc']:.4f} AP {s['ap']:.4f} CP@100 {s['cp100']:.4f}; "
          f"{scores.eps:.0f} ev/s; labels learned {scores.stats['learned']:,}, expired {scores.stats['expired']:,}",
          flush=True)
    return scores, metrics


#: The settings of :func:`app.configured.model_params`' keys (what a worker is given in its environment).
MODEL_SETTINGS = {"kind": "MODEL_KIND", "trees": "ARF_TREES", "seed": "SEED", "arf_weight": "ARF_WEIGHT",
                  "grace_period": "ARF_GRACE_PERIOD", "max_features": "ARF_MAX_FEATURES", "lambda_value": "ARF_LAMBDA",
                  "lr_learning_rate": "LR_LEARNING_RATE", "lr_positive_weight": "LR_POSITIVE_WEIGHT"}


def model_options(args: argparse.Namespace) -> dict:
    """The model's parameters given on the command line (the others are the settings'), with
    ``kind`` and ``trees`` always there.

    >>> p = argparse.ArgumentParser(); add_model_options(p)
    >>> model_options(p.parse_args(["--kind", "arf", "--grace-period", "20", "--max-features", "5"]))["max_features"]
    5
    """
    given = {"kind": args.kind or settings.MODEL_KIND, "trees": args.trees or settings.ARF_TREES,
             "seed": args.model_seed, "arf_weight": args.arf_weight, "grace_period": args.grace_period,
             "max_features": args.max_features, "lambda_value": args.arf_lambda,
             "lr_positive_weight": args.lr_positive_weight}
    if given["max_features"] is not None and str(given["max_features"]).isdigit():
        given["max_features"] = int(given["max_features"])
    return {key: value for key, value in given.items() if value is not None}


def add_model_options(p: argparse.ArgumentParser) -> None:
    """The options of the model (defaults: the settings)."""
    p.add_argument("--kind", default=None, help="model kind: arf, lr, arf+lr (default: the setting)")
    p.add_argument("--trees", type=int, default=None, help="ARF trees (default: the setting)")
    p.add_argument("--grace-period", type=int, default=None, help="ARF grace period (default: the setting)")
    p.add_argument("--max-features", default=None, help="ARF features per split: sqrt, log2 or a number")
    p.add_argument("--arf-lambda", type=int, default=None, help="ARF Poisson lambda of online bagging")
    p.add_argument("--arf-weight", type=float, default=None, help="arf+lr: the forest's share of the probability")
    p.add_argument("--lr-positive-weight", type=float, default=None,
                   help="arf+lr: the weight of frauds in the second regression (1: none)")
    p.add_argument("--model-seed", type=int, default=None, help="the forest's seed (default: the setting)")


def member_figures(scores, label_delay_s: float, known: str, shares=tuple(i / 10 for i in range(11))) -> dict:
    """Each blend member's figures alone over the test weeks, and the forest's share of the blend
    chosen by AP over the four weeks before them (:func:`evaluation.windows.weeks_before`), with its
    test-week figures: ``ap_<member>_only``, ``arf_share_chosen``, ``ap_validation_chosen``,
    ``ap_chosen``, ``roc_chosen``, ``cp100_chosen``."""
    from dataclasses import replace

    members, names = scores.stats["members"], scores.stats["member_names"]
    labelled = scores.y >= 0
    test = ev.weeks_of_test(float(scores.event_time[labelled].min()), float(scores.event_time[labelled].max()))
    validation = ev.weeks_before(test)
    out = {}
    for j, name in enumerate(names):
        m = ev.evaluate(replace(scores, p=members[:, j]), label_delay=label_delay_s, known=known, weeks=test)["test"]
        print(f"[members] {name} alone: test weeks AP {m['ap']:.4f} ROC-AUC {m['roc_auc']:.4f} "
              f"CP@100 {m['cp100']:.4f}", flush=True)
        out[f"ap_{name}_only"] = m["ap"]
    best = None
    for share in shares:
        p = ev.blended(members, share)
        v = ev.evaluate(replace(scores, p=p), label_delay=label_delay_s, known=known, weeks=validation)["test"]
        t = ev.evaluate(replace(scores, p=p), label_delay=label_delay_s, known=known, weeks=test)["test"]
        print(f"[members] forest share {share:.1f}: AP {v['ap']:.4f} over the weeks from "
              f"{ev.week_label(validation[0][0])}, test weeks AP {t['ap']:.4f} ROC-AUC {t['roc_auc']:.4f} "
              f"CP@100 {t['cp100']:.4f}", flush=True)
        if best is None or v["ap"] > best[1]["ap"]:
            best = (share, v, t)
    share, v, t = best
    print(f"[members] chosen on the weeks before the test weeks: forest share {share:.1f} (validation AP "
          f"{v['ap']:.4f}); test weeks AP {t['ap']:.4f}", flush=True)
    out.update(arf_share_chosen=share, ap_validation_chosen=v["ap"], ap_chosen=t["ap"], roc_chosen=t["roc_auc"],
               cp100_chosen=t["cp100"])
    return out


def state_bytes(states: dict, encode=lambda state: json.dumps(state, separators=(",", ":")).encode()) -> float:
    """Mean size of the states as ``encode`` writes them (by default compact JSON, the terminal
    table's values; the card table's are :func:`app.scoring.windows.encode_card`'s)."""
    if not states:
        return math.nan
    return float(np.mean([len(encode(v)) for v in states.values()]))


def label_delays(metrics_text: str) -> dict:
    """From one reading of a worker's /metrics: the mean of ``fraud_label_delay_seconds`` in days and
    the shares of labels learned within 7.25 and 8 days (nan without labels learned).

    >>> text = '''# TYPE fraud_label_delay_seconds histogram
    ... fraud_label_delay_seconds_bucket{le="626400.0"} 3.0
    ... fraud_label_delay_seconds_bucket{le="691200.0"} 4.0
    ... fraud_label_delay_seconds_count 4.0
    ... fraud_label_delay_seconds_sum 2592000.0'''
    >>> label_delays(text)
    {'mean_days': 7.5, 'within_7.25_days': 0.75, 'within_8_days': 1.0}
    """
    from prometheus_client.parser import text_string_to_metric_families

    samples = {(s.name, s.labels.get("le")): s.value for family in text_string_to_metric_families(metrics_text)
               for s in family.samples if s.name.startswith("fraud_label_delay_seconds_")}
    count = samples.get(("fraud_label_delay_seconds_count", None), 0.0)
    if not count:
        return {"mean_days": math.nan, "within_7.25_days": math.nan, "within_8_days": math.nan}
    out = {"mean_days": samples[("fraud_label_delay_seconds_sum", None)] / count / ev.DAY_S}
    for days in (7.25, 8.0):
        out[f"within_{days:g}_days"] = samples[("fraud_label_delay_seconds_bucket", repr(days * ev.DAY_S))] / count
    return out


def run_service(sim: simulator.Simulation, model: dict, label_delay_s: float, with_windows: bool,
                timeout_s: float = 3600.0, rate: float = 0.0, known: str = "week",
                pending_ttl_s: float | None = None, amount_ratios: bool = False,
                labels_free: bool = False, learning: str = "partition", negatives: float = 1.0,
                scores_lead: int = 500, snapshot_every: int = 0) -> dict:
    """One run of the service (windows on or off) over the simulator's rows: ``{"eps", "metrics",
    "scores", "labels"}``, or ``{"error": ...}`` when its scores did not all come. ``pending_ttl_s``:
    the worker's ``PENDING_TTL_S`` (default: the setting); ``amount_ratios``: its
    ``CARD_AMOUNT_RATIOS`` (with the windows on); ``labels``: the labels' outcomes counted
    by the worker (``fraud_labels_total``) when the last score came. Each label waits until the
    transaction that made it due is scored (:mod:`app.label_gate`), and the replay keeps at most
    ``scores_lead`` transactions ahead of their scores, unless ``labels_free``. ``label_delay``:
    how late the worker learned the labels in event time (``fraud_label_delay_seconds``): the mean
    in days and the shares learned within 7.25 and 8 days.
    ``learning``: the worker's ``LEARNING_MODE`` (``partition``, the one partition's model predicts
    and learns; ``central``, a replica predicts and the worker's learner learns, with its run's
    examples and snapshots topics); either learns every fraud and a share ``negatives`` of the
    genuine examples (``LEARN_SAMPLE_RATE``); ``snapshot_every``, unless 0: a snapshot every so many examples or 10 s, and
    the staleness bound twice that).

    The replay sends a label right after the first transaction at least ``label_delay_s`` later in
    event time, so when the scorer takes that transaction first, the label's transaction is already
    more than ``label_delay_s`` behind the partition's event time: with ``PENDING_TTL_S`` equal to
    the delay, its pending features have expired and the label is neither learned nor given to its
    terminal's windows (outcome ``expired``). A TTL longer than the delay keeps them."""
    from app.records import Score
    from app.replay import transaction_id
    from app.testing.kafka import read, wait_written
    from app.testing.replay import replay
    from app.testing.run import fresh_run

    name = "windows" if with_windows else "raw"
    rows = list(sim.rows())
    n = len(rows)
    env = {"FRAUD_AGENTS": "scoring", "FRAUD_MODEL_FEATURES": "Amount",
           "FRAUD_WINDOW_FEATURES": "1" if with_windows else "0",
           "FRAUD_CARD_AMOUNT_RATIOS": "1" if amount_ratios else "0",
           **{f"FRAUD_{MODEL_SETTINGS[key]}": str(value) for key, value in model.items()}}
    if pending_ttl_s is not None:
        env["FRAUD_PENDING_TTL_S"] = str(pending_ttl_s)
    env.update(FRAUD_LEARNING_MODE=learning, FRAUD_LEARN_SAMPLE_RATE=repr(negatives))
    with fresh_run("benchwin") as run:
        if learning == "central":
            env.update(FRAUD_EXAMPLES_TOPIC=f"{run.names.prefix}.examples",
                       FRAUD_SNAPSHOTS_TOPIC=f"{run.names.prefix}.snapshots")
            if snapshot_every:
                env.update(FRAUD_SNAPSHOT_EVERY=str(snapshot_every), FRAUD_SNAPSHOT_EVERY_S="10",
                           FRAUD_STALENESS_MAX_EXAMPLES=str(2 * snapshot_every))
        worker = run.start_worker(env)
        names = worker.names
        started = time.perf_counter()
        sent = replay(names, rows, labels="delayed", label_delay_event_s=label_delay_s, rate=rate,
                      labels_after_scores=None if labels_free else names.scores,
                      scores_lead=0 if labels_free else scores_lead, progress=True, total=n)
        print(f"[service {name}] replayed {sent.transactions:,} transactions and {sent.labels:,} labels in "
              f"{sent.elapsed_s:.1f}s; waiting for the scores", flush=True)
        exited = lambda: worker.proc.poll() is not None  # noqa: E731
        wait_written(names.scores, n, timeout_s=timeout_s, idle_s=60.0, stop_if=exited)
        scores = read(names.scores, Score, expect=n, timeout_s=timeout_s, idle_s=60.0, stop_if=exited)
        by_id: dict[str, dict] = {}
        for _, value, _, _ in scores:
            by_id.setdefault(value["transaction_id"], value)
        if len(by_id) < n:
            print(f"[service {name}] only {len(by_id)} of {n} scores came:\n{worker.log_tail()}", flush=True)
            return {"error": f"{len(by_id)} of {n} scores"}
        ordered = [by_id[transaction_id("tx", i)] for i in range(n)]
        times = np.array([s["processing_time"] for s in ordered])
        eps = (n - 1) / (times.max() - times.min())
        missing = {id_: worker.metric("fraud_window_features_missing_total", id=id_) for id_ in ("card", "terminal")}
        early = worker.metric("fraud_parked_labels_total", event="learned")
        labels = {outcome: worker.metric("fraud_labels_total", outcome=outcome)
                  for outcome in ("learned", "expired", "parked", "unknown", "duplicate")}
        label_delay = label_delays(worker.metrics_text())
        print(f"[service {name}] labels learned {label_delay['mean_days']:.3f} days after their transaction on "
              f"average (event time); within 7.25 days: {label_delay['within_7.25_days']:.4f}, within 8 days: "
              f"{label_delay['within_8_days']:.4f}", flush=True)
        print(f"[service {name}] {n:,} scores in {time.perf_counter() - started:.0f}s, {eps:.0f} ev/s "
              f"(first to last score); without card / terminal features: {missing['card']:.0f} / "
              f"{missing['terminal']:.0f}; labels learned with their transaction, having come before it was "
              f"scored (no delay): {early:.0f}; labels by outcome: "
              f"{', '.join(f'{k} {v:.0f}' for k, v in labels.items())}", flush=True)
    service = ev.Scores(np.array([r["event_time"] for r in rows], dtype=np.float64),
                        np.array([r["card_id"] for r in rows], dtype=object),
                        np.array([int(r["Class"]) for r in rows], dtype=np.int8),
                        np.array([s["fraud_probability"] for s in ordered], dtype=np.float64))
    metrics = ev.evaluate(service, label_delay=label_delay_s, known=known)
    t, w = metrics["test"], metrics["stream"]
    print(f"[service {name}] test weeks: ROC-AUC {t['roc_auc']:.4f} AP {t['ap']:.4f} CP@100 {t['cp100']:.4f}; "
          f"whole stream: ROC-AUC {w['roc_auc']:.4f} AP {w['ap']:.4f} CP@100 {w['cp100']:.4f}", flush=True)
    return {"eps": eps, "metrics": metrics, "scores": service, "early_labels": early, "labels": labels,
            "label_delay": label_delay}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.windows", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    # no option may start with --loop or --datadir: Faust takes those from sys.argv when it is imported
    p.add_argument("--config", choices=sorted(simulator.CONFIGS), default="small", help="simulator configuration")
    p.add_argument("--seed", type=int, default=0, help="simulator seed")
    add_model_options(p)
    p.add_argument("--amount-ratios", action="store_true",
                   help="add the card windows' amount ratios (the amount over each window's mean amount) to the "
                        "window features of the loops and the worker (without it, neither has them, whatever "
                        "CARD_AMOUNT_RATIOS says)")
    p.add_argument("--negatives", type=float, default=1.0,
                   help="the loops learn every fraud and this share of the genuine transactions (default 1: all); "
                        "the service too (its LEARN_SAMPLE_RATE)")
    p.add_argument("--lr-baseline", action="store_true",
                   help="also the plain loop of the logistic regression (lr, every label learned) on the window "
                        "features (and, with --amount-ratios, once more with the ratios)")
    p.add_argument("--label-delay-days", type=float, default=7.0, help="labels come this long after their transaction")
    p.add_argument("--known", choices=("week", "handbook"), default="week",
                   help="the cards a test week leaves out: a fraud label received before the week (week, default) "
                        "or the Handbook's rule (handbook; see evaluation.windows)")
    p.add_argument("--members", action="store_true",
                   help="arf+lr: the windows loop also keeps each member's probabilities; print each member alone and "
                        "the forest's share chosen by AP over the four weeks before the test weeks, with its test "
                        "figures")
    p.add_argument("--no-service", action="store_true", help="the plain loops only (no Kafka)")
    p.add_argument("--plain", choices=("both", "windows", "raw", "none"), default="both",
                   help="the plain loops with the window features and on the raw input (both, default), one of "
                        "them (windows, raw), or none (the service only); the keys of a loop not run are nan")
    p.add_argument("--service-windows", choices=("both", "on", "off"), default="both",
                   help="run the service with the windows on and off (both, default), or once")
    p.add_argument("--learning", choices=("partition", "central"), default="partition",
                   help="the worker's LEARNING_MODE: partition (default: the partition's model predicts and learns) "
                        "or central (a replica predicts, the worker's learner learns); either learns every fraud and "
                        "the share --negatives of the genuine examples")
    p.add_argument("--snapshot-every", type=int, default=0,
                   help="--learning central: a snapshot every N examples or 10 s, and the staleness bound 2N "
                        "(default 0: the settings, SNAPSHOT_EVERY, SNAPSHOT_EVERY_S, STALENESS_MAX_EXAMPLES)")
    p.add_argument("--scores-lead", type=int, default=500,
                   help="the replay keeps at most this many transactions ahead of their scores (default 500; 0: no "
                        "bound): the worker then holds few transactions in front of a label")
    p.add_argument("--labels-free", action="store_true",
                   help="send each label once the transaction that made it due is sent, not once it is scored "
                        "(flat out, labels then reach the scorer early)")
    p.add_argument("--timeout-s", type=float, default=3600.0, help="the longest a service run waits for its scores")
    p.add_argument("--service-rate", type=float, default=0.0,
                   help="replay to the service at this many events/s (0: flat out)")
    p.add_argument("--label-order", choices=("merged", "replay"), default="merged",
                   help="the loops take each label at its time (merged, default) or as the replay sends it, after the "
                        "transaction that made it due, dropping it when its transaction is PENDING_TTL_S (or "
                        "--pending-ttl-days) behind the newest (replay: what the service's scorer does)")
    p.add_argument("--pending-ttl-days", type=float, default=None,
                   help="the worker's PENDING_TTL_S in days (default: the setting, 8 days; 7, as long as the labels' "
                        "delay, makes a label the scorer takes after the transaction that made it due find its "
                        "features expired)")
    args = p.parse_args(argv)
    model = model_options(args)
    kind, trees = model["kind"], model["trees"]
    if args.members and kind != "arf+lr":
        p.error("--members needs --kind arf+lr (a blend)")
    delay = args.label_delay_days * ev.DAY_S
    # the settings' windows, the amount ratios as the option says (the worker gets the same choice)
    plain = TransactionFeatures(**{**configured.transaction_features(settings).params(), "amount_ratios": False})
    features = TransactionFeatures(**{**plain.params(), "amount_ratios": True}) if args.amount_ratios else plain

    sim = simulator.load(simulator.CONFIGS[args.config], seed=args.seed)
    print(simulator.format_summary(simulator.summary(sim)), flush=True)
    print(f"[setup] model {model} (the rest: the settings); window features {features!r}; "
          f"labels {args.label_delay_days:g} days late; genuine transactions learned: {args.negatives:g}", flush=True)

    order = {"order": args.label_order, "pending_ttl_s": None if args.label_order == "merged" else (
        float(settings.PENDING_TTL_S) if args.pending_ttl_days is None else args.pending_ttl_days * ev.DAY_S)}
    loops, blend, baseline = {}, {}, {}
    card_b = terminal_b = math.nan
    if args.plain == "none":
        print("[loops] not run (--plain none): their keys are nan", flush=True)
    if args.plain in ("both", "windows"):
        loops["on"] = run_loop(sim, model, delay, features, known=args.known, negatives=args.negatives,
                               members=args.members, **order)
        blend = member_figures(loops["on"][0], delay, args.known) if args.members else {}
    if args.plain in ("both", "raw"):
        loops["off"] = run_loop(sim, model, delay, None, known=args.known, negatives=args.negatives, **order)
    if args.lr_baseline and args.plain != "none":  # the regression, learning every label, on the Handbook's features
        for suffix, lr_features in (("lr", plain), ("lr_ratios", features if args.amount_ratios else None)):
            if lr_features is not None:
                _, m = run_loop(sim, {"kind": "lr"}, delay, lr_features, known=args.known, name=suffix, **order)
                baseline.update({f"ap_{suffix}": m["test"]["ap"], f"roc_{suffix}": m["test"]["roc_auc"],
                                 f"cp100_{suffix}": m["test"]["cp100"], f"stream_ap_{suffix}": m["stream"]["ap"]})
    if "on" in loops:
        driver = loops["on"][0].stats["driver"]
        card_b = state_bytes(driver.cards, lambda state: encode_card(0, state))
        terminal_b = state_bytes(driver.terminals)
        print(f"[state] {len(driver.cards):,} cards, {card_b:.0f} bytes each packed; {len(driver.terminals):,} "
              f"terminals, {terminal_b:.0f} bytes each as JSON; 10 million cards: {card_b * 1e7 / 1e9:.1f} GB",
              flush=True)

    service = {}
    if args.no_service:
        print("[service] not run (--no-service): service_eps, ratio and windows_cost_ratio are nan", flush=True)
    else:
        ttl = None if args.pending_ttl_days is None else args.pending_ttl_days * ev.DAY_S
        which = {"both": (True, False), "on": (True,), "off": (False,)}[args.service_windows]
        runs = {on_off: run_service(sim, model, delay, with_windows=on_off, timeout_s=args.timeout_s,
                                    rate=args.service_rate, known=args.known, pending_ttl_s=ttl,
                                    amount_ratios=args.amount_ratios, labels_free=args.labels_free,
                                    learning=args.learning, negatives=args.negatives, scores_lead=args.scores_lead,
                                    snapshot_every=args.snapshot_every)
                for on_off in which}
        if any("error" in run for run in runs.values()):
            return 1
        service.update(service_rate=args.service_rate, labels_free=int(args.labels_free), learning=args.learning,
                       snapshot_every=args.snapshot_every)
        for on_off, suffix in ((True, "windows"), (False, "raw")):
            if on_off not in runs:
                continue
            run, m = runs[on_off], runs[on_off]["metrics"]
            service.update({f"service_ap_{suffix}": m["test"]["ap"], f"service_roc_{suffix}": m["test"]["roc_auc"],
                            f"service_cp100_{suffix}": m["test"]["cp100"],
                            f"service_stream_ap_{suffix}": m["stream"]["ap"],
                            f"service_{suffix}_eps": run["eps"], f"service_early_labels_{suffix}": run["early_labels"],
                            f"service_labels_expired_{suffix}": run["labels"]["expired"],
                            f"service_labels_learned_{suffix}": run["labels"]["learned"],
                            f"service_label_delay_days_{suffix}": run["label_delay"]["mean_days"],
                            f"service_labels_within_7_25_days_{suffix}": run["label_delay"]["within_7.25_days"]})
            if "on" in loops and on_off and args.learning == "partition":  # central corrects for its sample rate
                diff = float(np.max(np.abs(run["scores"].p - loops["on"][0].p)))
                print(f"[service] max |p_service - p_loop| with windows {diff:.3g} (the loop learns each label "
                      f"{args.label_delay_days:g} days after its transaction, the service once its consumer takes "
                      f"it)", flush=True)
        if len(runs) == 2:
            service["windows_cost_ratio"] = runs[True]["eps"] / runs[False]["eps"]
            print(f"[service] windows on: {runs[True]['eps']:.0f} ev/s, off: {runs[False]['eps']:.0f} ev/s (ratio "
                  f"{service['windows_cost_ratio']:.2f})", flush=True)
    service_eps = service.get("service_windows_eps", math.nan)
    nan_metrics = {"ap": math.nan, "roc_auc": math.nan, "cp100": math.nan}
    (on, on_metrics), (off, off_metrics) = (loops.get(k, (None, {"test": nan_metrics, "stream": nan_metrics}))
                                            for k in ("on", "off"))
    loop_eps, loop_raw_eps = (on.eps if on else math.nan), (off.eps if off else math.nan)
    t_on, t_off, s_on, s_off = on_metrics["test"], off_metrics["test"], on_metrics["stream"], off_metrics["stream"]
    print(key_values(
        ap_windows=t_on["ap"], ap_raw=t_off["ap"], roc_windows=t_on["roc_auc"], roc_raw=t_off["roc_auc"],
        cp100_windows=t_on["cp100"], service_eps=service_eps, loop_eps=loop_eps, ratio=service_eps / loop_eps,
        windows_cost_ratio=service.get("windows_cost_ratio", math.nan), cp100_raw=t_off["cp100"],
        stream_ap_windows=s_on["ap"], stream_ap_raw=s_off["ap"], stream_roc_windows=s_on["roc_auc"],
        stream_roc_raw=s_off["roc_auc"], stream_cp100_windows=s_on["cp100"], stream_cp100_raw=s_off["cp100"],
        loop_raw_eps=loop_raw_eps, loop_windows_cost_ratio=loop_eps / loop_raw_eps, card_state_bytes=card_b,
        terminal_state_bytes=terminal_b, transactions=len(sim), frauds=sim.frauds, config=args.config, kind=kind,
        trees=trees, label_delay_days=args.label_delay_days, negatives=args.negatives, loop_order=args.label_order,
        loop_labels_expired=on.stats["expired"] if on else math.nan, pending_ttl_days=args.pending_ttl_days,
        amount_ratios=int(args.amount_ratios), **{key: value for key, value in model.items() if key not in ("kind", "trees")},
        **baseline, **blend,
        **{key: value for key, value in service.items() if key not in ("service_windows_eps", "windows_cost_ratio")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
