"""Faults during a replay, measured: events sent, scored, duplicates, lost and recovery seconds.

    python benchmarks/faults.py                      # every fault
    python benchmarks/faults.py --only kill,broker   # some of them
    python benchmarks/faults.py --scale 2            # twice the events per fault

Faults (scenarios in :mod:`app.testing.faults`):

* ``none``: the baseline, the same replay as ``kill`` without a fault;
* ``kill``: the only worker is killed -9 a third into the replay, a new one starts at once;
* ``broker``: the worker's Kafka (a private one, started here) stops mid-backlog for 5 s, then starts;
* ``registry-start``: the worker starts while the registry is unreachable, which comes back 4 s later;
* ``registry-mid``: the registry becomes unreachable halfway; the second half is sent meanwhile;
* ``failover``: two workers on 4 partitions, one killed -9 mid-stream;
* ``registry-restart``: a private stack's registry restarts while the first half is sent, then a worker
  never seen before reads everything; ``misread`` counts scores whose event time is not the one sent;
* ``refused``: the broker refuses the scores (a 64-byte ``max.message.bytes``): the worker exits with
  code 74; restarted on a topic of Kafka's default size it scores everything;
* ``broker-catch-up``: a worker killed -9 after a checkpoint restarts while its (private) broker is down;
  the broker comes back 8 s later (a worker that exited meanwhile is started again, and its exit code is
  ``catch_up_exit_while_down``);
* ``planted``: an unsigned model checkpoint whose pickle would create a file is put on the changelog
  between two runs; ``planted_ran`` is 1 if the file exists afterwards;
* ``kills``: labels in the event, the worker killed -9 and restarted ``--kills`` times at random
  intervals (``--kill-interval``, ``--seed``); ``label_learned_twice`` is the model's events learned
  beyond the transactions sent, ``max_abs_diff`` the largest difference between the scores of ``--probe``
  transactions sent afterwards and those of a plain predict-then-learn loop over the same rows.

Sizes: ``--events NAME=N,...`` sets a fault's events (``--scale`` multiplies all of them).

Workers run with ``FRAUD_BROKER_SESSION_TIMEOUT_S=10`` (``--session-timeout``; Faust's default is 60 s: a
killed member keeps its partitions that long) and the ``lr`` model. The shared stack (Kafka 9092, registry 8081) is started if
it is not running, and stopped at the end only then; it is never stopped in between.
The last line is ``key=value`` pairs ending in ``lost_total`` and, of the faults that ran, ``misread``,
``planted_ran`` and ``label_learned_twice`` (all 0 when nothing went wrong).
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

from app.testing import faults
from app.testing.cpu import load_average
from app.testing.figures import key_values
from app.testing.stack import local_stack


SIZES = {"none": {"n": 3000}, "kill": {"n": 3000}, "broker": {"n": 3000}, "registry-start": {"n": 1000},
         "registry-mid": {"n": 2000}, "failover": {"n": 4000}, "registry-restart": {"n": 600},
         "refused": {"n": 200}, "broker-catch-up": {"n": 1000}, "planted": {"n": 600}, "kills": {"n": 3000}}
KEYS = {"none": "baseline", "kill": "kill", "broker": "broker", "registry-start": "registry_start",
        "registry-mid": "registry_mid", "failover": "failover", "registry-restart": "registry_restart",
        "refused": "refused", "broker-catch-up": "catch_up", "planted": "planted", "kills": "kills"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default=",".join(SIZES), help=f"comma-separated, of: {', '.join(SIZES)}")
    p.add_argument("--scale", type=float, default=1.0, help="multiply the events of each fault")
    p.add_argument("--session-timeout", type=float, default=10.0,
                   help="the workers' consumer-group session timeout in seconds (Faust's default: 60)")
    p.add_argument("--events", default="", help="NAME=N,... events of some faults (defaults: "
                   + ", ".join(f"{k}={v['n']}" for k, v in SIZES.items()) + ")")
    p.add_argument("--kills", type=int, default=20, help="kills -9 of the ``kills`` fault")
    p.add_argument("--kill-interval", default="2,15", help="MIN,MAX seconds between two kills (uniform)")
    p.add_argument("--seed", type=int, default=7, help="the RNG seed of the kill intervals")
    p.add_argument("--probe", type=int, default=200, help="transactions sent after the last kill, compared "
                   "with a plain loop")
    p.add_argument("--kill-rate", type=float, default=100.0, help="events/s sent while the kills go on")
    args = p.parse_args(argv)
    sizes = {name: dict(size) for name, size in SIZES.items()}
    for item in filter(None, (x.strip() for x in args.events.split(","))):
        name, _, value = item.partition("=")
        if name not in sizes or not value.isdigit():
            p.error(f"--events: {item!r} is not NAME=N with NAME one of {', '.join(SIZES)}")
        sizes[name]["n"] = int(value)
    min_s, max_s = (float(x) for x in args.kill_interval.split(","))
    wanted = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(wanted) - set(SIZES)
    if unknown:
        p.error(f"unknown faults: {', '.join(sorted(unknown))}")
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # a stopped broker is the point here

    faults.WORKER_ENV["FRAUD_BROKER_SESSION_TIMEOUT_S"] = f"{args.session_timeout:g}"
    print(f"workers: session timeout {args.session_timeout:g}s, model {faults.WORKER_ENV['FRAUD_MODEL_KIND']}",
          flush=True)
    results, failures = [], []
    load_before = load_average()
    with local_stack():
        with tempfile.TemporaryDirectory(prefix="faults-") as folder:
            for name in wanted:
                n = int(sizes[name]["n"] * args.scale)
                print(f"-- {name}: {n} events", file=sys.stderr, flush=True)
                started = time.monotonic()
                extra = {}
                if name == "kills":
                    extra = dict(kills=args.kills, rate=args.kill_rate, probe=args.probe, seed=args.seed,
                                 min_s=min_s, max_s=max_s)
                try:
                    result = faults.SCENARIOS[name](Path(folder) / name, n=n, **extra)
                except Exception as exc:  # noqa: BLE001 - a failed fault is reported, the others still run
                    failures.append(f"{name}: {type(exc).__name__}: {str(exc)[:2000]}")
                    print(f"   FAILED: {failures[-1]}", file=sys.stderr, flush=True)
                    continue
                results.append((name, result))
                print(f"   done in {time.monotonic() - started:.0f}s; {result.notes}", file=sys.stderr, flush=True)

    print(faults.FaultResult.HEADER)
    for _, result in results:
        print(result.row())
    for name, result in results:
        if name == "failover":
            for partition, handoff in result.notes["handoff"].items():
                print(f"failover: partition {partition}: model had learned {handoff['learned_before_kill']} events "
                      f"before the kill, the survivor resumed at {handoff['learned_at_takeover']} (checkpoint)")
        if name == "broker-catch-up" and result.notes["exit_while_down"] is not None:
            print(f"broker-catch-up: the worker exited with {result.notes['exit_while_down']} while its broker was "
                  f"down and was started again once it was back; its error: {result.notes['exit_log']}")
        if name == "kills":
            print(f"kills: intervals {result.notes['intervals_s']} s; events learned before the probe "
                  f"{result.notes['learned_before_probe']}; the first probe score had learned "
                  f"{result.notes['probe_events_learned_first']}")
    for failure in failures:
        print(f"FAILED {failure}")
    pairs = {}
    for name, result in results:
        key = KEYS[name]
        pairs[f"{key}_lost"] = result.lost
        pairs[f"{key}_dup"] = result.duplicates
        pairs[f"{key}_recovery_s"] = round(result.recovery_s, 1)
    notes = {name: result.notes for name, result in results}
    if "kills" in notes:
        pairs["kills"] = notes["kills"]["kills"]
        pairs["kills_learned_missing"] = notes["kills"]["learned_missing"]
        pairs["kills_max_abs_diff"] = f"{notes['kills']['max_abs_diff']:.3g}"
    if "refused" in notes:
        pairs["refused_exit_code"] = notes["refused"]["exit_code"]
    if "broker-catch-up" in notes:  # the restarted worker's exit code while its broker was down (0: none)
        pairs["catch_up_exit_while_down"] = notes["broker-catch-up"]["exit_while_down"] or 0
    pairs["load_avg"] = round((load_before + load_average()) / 2, 2)
    pairs["faults_run"] = len(results)
    pairs["faults_failed"] = len(failures)
    pairs["sent_total"] = sum(r.sent for _, r in results)
    pairs["scored_total"] = sum(r.scored for _, r in results)
    pairs["duplicates_total"] = sum(r.duplicates for _, r in results)
    pairs["lost_total"] = sum(r.lost for _, r in results)
    checks = {"registry-restart": "misread", "planted": "planted_ran", "kills": "label_learned_twice"}
    for name, key in checks.items():
        if name in notes:
            pairs[key] = notes[name][key]
    print(key_values(**pairs))
    bad = pairs["lost_total"] or pairs.get("catch_up_exit_while_down") or any(pairs.get(k) for k in checks.values())
    return 1 if failures or bad else 0


if __name__ == "__main__":
    sys.exit(main())
