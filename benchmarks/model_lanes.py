"""A decision's round trip through the model process while the stream's batches are queued there:
with the urgent lane (a ``predict`` goes ahead of the stream's lists, and between two operations
of one) and without it (the same ``predict`` in the stream lane, behind every list sent before it).

    python -m benchmarks.model_lanes                             # batches of 50 every 0.25 s, a predict every 5 ms
    python -m benchmarks.model_lanes --batch 200 --period 1.0 --rounds 3

A :class:`~app.learning.model_host.ProcessHost` with the configured model learns ``--train-rows``
ULB rows. Then, for ``--seconds`` at a time, alternately with and without the urgent lane
(``--rounds`` of each): a batch of ``--batch`` steps (predict, then learn: the next ULB rows) is
submitted every ``--period`` seconds in lists of ``MODEL_CHUNK``, as the scorer submits a batch,
while a ``predict`` is submitted every ``--every`` seconds, each at its time whatever the answers
before it (an open loop, as requests come); its round trip is from the submission to the result in
this process's event loop, which does nothing else. Only the model process is measured: no worker, no HTTP, no
Kafka (``benchmarks.http_scoring`` measures the whole path).

The machine is shared: the 1-minute load average (the highest seen) and the model process's CPU in
cores (``model_cores``) are printed. Last line: ``urgent_p50_ms urgent_p99_ms stream_p50_ms
stream_p99_ms``, then ``urgent_max_ms stream_max_ms urgent_n stream_n batch period every seconds
rounds train_rows kind trees load model_cores``.
"""
from __future__ import annotations

import argparse
import asyncio
import time

import numpy as np

from app.testing.figures import key_values


async def run(args, params: dict, xs: list[dict], ys: list[int], chunk: int) -> dict:
    from app.learning.model_host import STREAM, ProcessHost
    from app.learning.pipeline import model_factory
    from app.testing.cpu import cpu_seconds, load_average

    host = await ProcessHost.start()
    try:
        await host.submit([("open", 0, None, model_factory(**params), "")])
        for start in range(0, args.train_rows, 100):
            end = min(start + 100, args.train_rows)
            await host.submit([("step", 0, xs[i], ys[i]) for i in range(start, end)])
        later = list(range(args.train_rows, len(xs)))
        position = 0
        latencies: dict[bool, list[float]] = {True: [], False: []}
        load = load_average()
        cpu_before, started = cpu_seconds(host.process.pid), time.monotonic()

        async def phase(urgent: bool) -> None:
            nonlocal position
            stop = time.perf_counter() + args.seconds
            sent: list[asyncio.Future] = []

            async def stream() -> None:
                nonlocal position
                while time.perf_counter() < stop:
                    rows = [later[(position + i) % len(later)] for i in range(args.batch)]
                    position += args.batch
                    for at in range(0, len(rows), chunk):
                        sent.append(host.submit([("step", 0, xs[i], ys[i]) for i in rows[at:at + chunk]]))
                    await asyncio.sleep(args.period)

            async def decision(x: dict) -> None:
                begun = time.perf_counter()
                await host.submit([("predict", 0, x)], lane=None if urgent else STREAM)
                latencies[urgent].append(time.perf_counter() - begun)

            async def decisions() -> None:
                waiting, first = [], time.perf_counter()
                for k in range(int(args.seconds / args.every)):
                    ahead = first + k * args.every - time.perf_counter()
                    if ahead > 0:
                        await asyncio.sleep(ahead)
                    waiting.append(asyncio.ensure_future(decision(xs[later[k % len(later)]])))
                await asyncio.gather(*waiting)

            await asyncio.gather(stream(), decisions())
            await asyncio.gather(*sent)  # the next phase starts with nothing queued

        for _ in range(args.rounds):
            for urgent in (True, False):
                await phase(urgent)
                load = max(load, load_average())
        model_cores = (cpu_seconds(host.process.pid) - cpu_before) / (time.monotonic() - started)
    finally:
        await host.close()
    return {"latencies": latencies, "load": load, "model_cores": model_cores}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.model_lanes", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-rows", type=int, default=5000, help="ULB rows the model learns first")
    p.add_argument("--batch", type=int, default=50, help="steps in each batch of the stream")
    p.add_argument("--period", type=float, default=0.25, help="seconds between two batches")
    p.add_argument("--every", type=float, default=0.005, help="seconds between two predicts")
    p.add_argument("--seconds", type=float, default=10.0, help="length of one phase")
    p.add_argument("--rounds", type=int, default=2, help="phases with the urgent lane, and as many without")
    p.add_argument("--kind", default=None, help="model kind: arf, lr, arf+lr (default: the setting)")
    p.add_argument("--trees", type=int, default=None, help="ARF trees (default: the setting)")
    args = p.parse_args(argv)
    if args.train_rows < 1 or args.batch < 1 or args.period <= 0 or args.every <= 0 or args.seconds <= 0 \
            or args.rounds < 1:
        p.error("--train-rows, --batch and --rounds need at least 1; --period, --every and --seconds more than 0")

    import settings
    from app import configured
    from app.data import ensure_creditcard_csv, iter_rows
    from app.records import FEATURE_NAMES

    params = configured.model_params(settings)
    if args.kind:
        params["kind"] = args.kind
    if args.trees:
        params["trees"] = args.trees
    rows = list(iter_rows(ensure_creditcard_csv(), limit=args.train_rows + 20000))
    xs = [{name: float(row[name]) for name in FEATURE_NAMES} for row in rows]
    ys = [int(row["Class"]) for row in rows]
    print(f"train_rows={args.train_rows} batches of {args.batch} every {args.period:g} s, a predict every "
          f"{args.every * 1000:g} ms, {args.rounds} x {args.seconds:g} s per lane, model={params}", flush=True)
    out = asyncio.run(run(args, params, xs, ys, settings.MODEL_CHUNK))

    figures = {}
    for urgent, name in ((True, "urgent"), (False, "stream")):
        ms = np.array(out["latencies"][urgent]) * 1000
        figures[name] = (float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), float(ms.max()), len(ms))
        print(f"[{name} lane] {len(ms)} predicts: p50 {figures[name][0]:.2f} ms, p99 {figures[name][1]:.2f} ms, "
              f"max {figures[name][2]:.1f} ms")
    print(f"load {out['load']:.2f}; the model process had {out['model_cores']:.2f} of a core")
    (u50, u99, umax, un), (s50, s99, smax, sn) = figures["urgent"], figures["stream"]
    print(key_values(urgent_p50_ms=u50, urgent_p99_ms=u99, stream_p50_ms=s50, stream_p99_ms=s99,
                     urgent_max_ms=umax, stream_max_ms=smax, urgent_n=un, stream_n=sn, batch=args.batch,
                     period=args.period, every=args.every, seconds=args.seconds, rounds=args.rounds,
                     train_rows=args.train_rows, kind=params["kind"], trees=params["trees"], load=out["load"],
                     model_cores=out["model_cores"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
