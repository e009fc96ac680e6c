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
* ``failover``: two workers on 4 partitions, one killed -9 mid-stream.

Workers run with ``FRAUD_BROKER_SESSION_TIMEOUT_S=10`` (``--session-timeout``; Faust's default is 60 s: a
killed member keeps its partitions that long) and the ``lr`` model. The shared stack (Kafka 9092, registry 8081) is started if
it is not running, and stopped at the end only then; it is never stopped in between.
The last line is ``key=value`` pairs ending in ``lost_total``.
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
         "registry-mid": {"n": 2000}, "failover": {"n": 4000}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default=",".join(SIZES), help=f"comma-separated, of: {', '.join(SIZES)}")
    p.add_argument("--scale", type=float, default=1.0, help="multiply the events of each fault")
    p.add_argument("--session-timeout", type=float, default=10.0,
                   help="the workers' consumer-group session timeout in seconds (Faust's default: 60)")
    args = p.parse_args(argv)
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
                n = int(SIZES[name]["n"] * args.scale)
                print(f"-- {name}: {n} events", file=sys.stderr, flush=True)
                started = time.monotonic()
                try:
                    result = faults.SCENARIOS[name](Path(folder) / name, n=n)
                except Exception as exc:  # noqa: BLE001 - a failed fault is reported, the others still run
                    failures.append(f"{name}: {type(exc).__name__}: {str(exc)[:2000]}")
                    print(f"   FAILED: {failures[-1]}", file=sys.stderr, flush=True)
                    continue
                results.append(result)
                print(f"   done in {time.monotonic() - started:.0f}s; {result.notes}", file=sys.stderr, flush=True)

    print(faults.FaultResult.HEADER)
    for result in results:
        print(result.row())
    for result in results:
        if result.fault.startswith("failover"):
            for partition, handoff in result.notes["handoff"].items():
                print(f"failover: partition {partition}: model had learned {handoff['learned_before_kill']} events "
                      f"before the kill, the survivor resumed at {handoff['learned_at_takeover']} (checkpoint)")
    for failure in failures:
        print(f"FAILED {failure}")
    pairs = {}
    for result in results:
        key = {"none": "baseline", "kill": "kill", "broker": "broker", "failover": "failover"}.get(
            result.fault.split(" ")[0]) or ("registry_start" if "start" in result.fault else "registry_mid")
        pairs[f"{key}_lost"] = result.lost
        pairs[f"{key}_dup"] = result.duplicates
        pairs[f"{key}_recovery_s"] = round(result.recovery_s, 1)
    pairs["load_avg"] = round((load_before + load_average()) / 2, 2)
    pairs["faults_run"] = len(results)
    pairs["faults_failed"] = len(failures)
    pairs["sent_total"] = sum(r.sent for r in results)
    pairs["scored_total"] = sum(r.scored for r in results)
    pairs["duplicates_total"] = sum(r.duplicates for r in results)
    pairs["lost_total"] = sum(r.lost for r in results)
    print(key_values(**pairs))
    return 1 if failures or pairs["lost_total"] else 0


if __name__ == "__main__":
    sys.exit(main())
