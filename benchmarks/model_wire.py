"""What crossing to the model process costs per event, beside the model's own CPU per event.

    python -m benchmarks.model_wire
    python -m benchmarks.model_wire --chunk 50 --features 40

Two measurements, in this process, no Kafka:

1. **The encoding of a list of operations.** A list of ``--chunk`` ``step`` operations of ULB-like
   transactions (``--features`` float features each, labels 0, 1 or None), as the scorer sends them
   to the model host: µs per operation to encode (the worker's side) and to decode (the model
   process's side), and the bytes per list, for the pickle the host sends and for a compact layout
   (:func:`compact_dumps`: the feature names once per list, the values packed as float64, the labels
   one byte each; lists it cannot hold exactly, as pickles). Each is the best of several repeats,
   the two formats timed in turn.
2. **A read of the pipe, by size asked.** One list written to a pipe and read back with
   ``os.read`` asking 64 kB (what the host's two sides ask), 256 kB (asyncio's pipe transport's
   default) and 1 MB: µs per write and read. Asking 128 kB or more costs about 13 µs whatever the
   read gets (the buffer is allocated with ``mmap`` and freed each time).

3. **The model process, fed in bulk or paced.** The first ``--pipe-rows`` ULB rows predicted then
   learned by ARF with 3 trees in a plain loop in this process, then by a model process
   (:class:`~app.learning.model_host.ProcessHost`) sent lists of ``--chunk`` ``step`` operations all
   at once (it never waits for work), then one list every ``--pace-ms`` (it waits, asleep, between
   lists, as behind a worker that is not flat out): the CPU per event of each and how many times the
   model process went to sleep. Best of ``--rounds`` rounds, the three in turn.

Compare the µs per operation with the model's own CPU per event (about 100-150 µs for ARF with 3
trees on this machine: ``benchmarks.scoring``'s ``loop_cpu_eps``).
"""
from __future__ import annotations

import argparse
import asyncio
import functools
import os
import pickle
import random
import struct
import sys
import time
import timeit
from itertools import chain, repeat
from operator import itemgetter

from app.testing.cpu import cpu_seconds, load_average
from app.testing.figures import key_values

_HEAD = struct.Struct("<BIHI")  # tag, operations, names, bytes of the names
_STEPS = 0x53  # b"S"; a pickle (protocol 2 or later) starts with 0x80
_op, _key, _x, _y = map(itemgetter, range(4))
_LABEL_BYTE = {None: 255, **{i: i for i in range(255)}}
_LABEL_OF = tuple(range(255)) + (None,)
_names_block: dict[tuple, bytes] = {}
_block_names: dict[bytes, tuple] = {}


def compact_dumps(ops: list[tuple]) -> bytes:
    """``ops`` in the compact layout when each is ``("step", int key, dict of floats, None or a
    small int)`` with the same names in the same order; else their pickle.

    >>> ops = [("step", 0, {"V1": 0.1, "V2": -2.5}, 1), ("step", 3, {"V1": 1e-300, "V2": 0.0}, None)]
    >>> body = compact_dumps(ops)
    >>> body[0] == _STEPS, compact_loads(body) == ops
    (True, True)
    >>> compact_dumps([("step", 0, {"V1": 1}, 1)])[0] == 0x80  # an int value: a pickle
    True
    """
    n = len(ops)
    if not n or set(map(len, ops)) != {4} or set(map(_op, ops)) != {"step"}:
        return pickle.dumps(ops, protocol=pickle.HIGHEST_PROTOCOL)
    xs = list(map(_x, ops))
    if set(map(type, xs)) != {dict}:
        return pickle.dumps(ops, protocol=pickle.HIGHEST_PROTOCOL)
    names = tuple(xs[0])
    keys, labels = list(map(_key, ops)), list(map(_y, ops))
    values = list(chain.from_iterable(map(dict.values, xs)))
    if not all(map(names.__eq__, map(tuple, xs))) or set(map(type, keys)) != {int} \
            or not set(map(type, labels)) <= {int, type(None)} or (values and set(map(type, values)) != {float}):
        return pickle.dumps(ops, protocol=pickle.HIGHEST_PROTOCOL)
    block = _names_block.get(names)
    if block is None:
        block = _names_block[names] = "\0".join(names).encode()
    try:
        return b"".join((_HEAD.pack(_STEPS, n, len(names), len(block)), block, struct.pack(f"<{n}q", *keys),
                         bytes(map(_LABEL_BYTE.__getitem__, labels)), struct.pack(f"<{len(values)}d", *values)))
    except (KeyError, struct.error):  # a label out of 0..254, a key out of 64 bits
        return pickle.dumps(ops, protocol=pickle.HIGHEST_PROTOCOL)


def compact_loads(body: bytes) -> list[tuple]:
    """The operations of :func:`compact_dumps`'s ``body``."""
    if body[0] != _STEPS:
        return pickle.loads(body)
    _, n, k, size = _HEAD.unpack_from(body)
    at = _HEAD.size + size
    block = body[_HEAD.size:at]
    names = _block_names.get(block)
    if names is None:
        names = _block_names[block] = tuple(map(sys.intern, block.decode().split("\0"))) if k else ()
    keys = struct.unpack_from(f"<{n}q", body, at)
    labels = map(_LABEL_OF.__getitem__, body[at + 8 * n:at + 9 * n])
    values = iter(struct.unpack_from(f"<{n * k}d", body, at + 9 * n))
    return list(zip(repeat("step", n), keys, map(dict, map(zip, repeat(names, n), repeat(values, n))), labels))


def best_us(f, number: int, repeats: int = 7) -> float:
    """The best of ``repeats`` timings of ``number`` calls of ``f``, in µs per call."""
    return min(timeit.repeat(f, number=number, repeat=repeats)) / number * 1e6


def read_us(body: bytes, ask: int, n: int = 5000) -> float:
    """µs per write of ``body`` to a pipe and ``os.read(ask)`` of it."""
    r, w = os.pipe()
    try:
        def once():
            os.write(w, body)
            os.read(r, ask)
        return best_us(once, n, 5)
    finally:
        os.close(r)
        os.close(w)


def sleeps(pid: int) -> int:
    """How many times process ``pid`` has gone to sleep waiting (its voluntary context switches)."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("voluntary_ctxt_switches:"))


def loop_us(xs: list[dict], ys: list[int], params: dict) -> float:
    """CPU µs per event of predicting then learning each row in this process."""
    from app.learning import OnlineLearner, build_model

    learner = OnlineLearner(functools.partial(build_model, **params))
    started = time.process_time()
    for x, y in zip(xs, ys):
        learner.predict_proba(x)
        learner.learn(x, y)
    return 1e6 * (time.process_time() - started) / len(xs)


async def model_process_us(xs: list[dict], ys: list[int], params: dict, chunk: int, pace_s: float) -> tuple[float, int]:
    """CPU µs per event of a model process sent the rows as lists of ``chunk`` steps, one list every
    ``pace_s`` (0: all at once), and how many times it slept meanwhile."""
    from app.learning import build_model
    from app.learning.model_host import ProcessHost

    host = await ProcessHost.start(gc_freeze=True)
    try:
        await host.submit([("open", 0, None, functools.partial(build_model, **params), "")])
        pid = host.process.pid
        cpu_before, sleeps_before = cpu_seconds(pid), sleeps(pid)
        futures = []
        for start in range(0, len(xs), chunk):
            futures.append(host.submit([("step", 0, x, y) for x, y in zip(xs[start:start + chunk], ys[start:start + chunk])]))
            await asyncio.sleep(pace_s)
        await asyncio.gather(*futures)
        return 1e6 * (cpu_seconds(pid) - cpu_before) / len(xs), sleeps(pid) - sleeps_before
    finally:
        await host.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.model_wire", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--chunk", type=int, default=10, help="operations per list (the scorer's MODEL_CHUNK)")
    p.add_argument("--features", type=int, default=29, help="float features per transaction (ULB: 29)")
    p.add_argument("--pipe-rows", type=int, default=20000, help="ULB rows through the model process (0: none)")
    p.add_argument("--pace-ms", type=float, default=4.0, help="one list every this many ms, paced")
    p.add_argument("--rounds", type=int, default=2, help="rounds of the loop, bulk and paced runs")
    args = p.parse_args(argv)
    rng = random.Random(7)
    names = [f"V{i}" for i in range(1, args.features)] + ["Amount"]
    ops = [("step", rng.randrange(4), {name: rng.gauss(0.0, 1.0) for name in names}, rng.choice((0, 1, None)))
           for _ in range(args.chunk)]
    pickled, compact = pickle.dumps(ops, protocol=pickle.HIGHEST_PROTOCOL), compact_dumps(ops)
    assert compact[0] == _STEPS and compact_loads(compact) == ops and pickle.loads(pickled) == ops
    results = [rng.random() for _ in range(args.chunk)]
    print(f"a list of {args.chunk} step operations, {len(names)} features each; load {load_average():.2f}")

    number = max(200, 20000 // args.chunk)
    timings: dict[str, list[float]] = {key: [] for key in ("pickle_encode", "compact_encode", "pickle_decode",
                                                            "compact_decode")}
    for _ in range(3):  # in turn, so that a busy spell of the machine falls on both
        timings["pickle_encode"].append(best_us(lambda: pickle.dumps(ops, protocol=pickle.HIGHEST_PROTOCOL), number))
        timings["compact_encode"].append(best_us(lambda: compact_dumps(ops), number))
        timings["pickle_decode"].append(best_us(lambda: pickle.loads(pickled), number))
        timings["compact_decode"].append(best_us(lambda: compact_loads(compact), number))
    per_op = {key: min(values) / args.chunk for key, values in timings.items()}
    print("| layout | encode (µs per operation) | decode (µs per operation) | bytes per list |\n| --- | --- | --- | --- |")
    print(f"| pickle | {per_op['pickle_encode']:.2f} | {per_op['pickle_decode']:.2f} | {len(pickled)} |")
    print(f"| compact | {per_op['compact_encode']:.2f} | {per_op['compact_decode']:.2f} | {len(compact)} |")
    result_pickle = pickle.dumps(results, protocol=pickle.HIGHEST_PROTOCOL)
    results_us = best_us(lambda: pickle.loads(pickle.dumps(results, protocol=pickle.HIGHEST_PROTOCOL)), number)
    print(f"the results (a list of {args.chunk} floats, {len(result_pickle)} bytes): pickled and unpickled in "
          f"{results_us / args.chunk:.2f} µs per operation")

    frame = b"\0" * 13 + pickled
    reads = {ask: read_us(frame, ask) for ask in (1 << 16, 1 << 18, 1 << 20)}
    print("| read asks | µs per write and read of one list |\n| --- | --- |")
    for ask, us in reads.items():
        print(f"| {ask // 1024} kB | {us:.2f} |")
    process: dict[str, float] = {}
    if args.pipe_rows:
        from app.data import ensure_creditcard_csv, iter_rows
        from app.records import FEATURE_NAMES

        rows = list(iter_rows(ensure_creditcard_csv(), limit=args.pipe_rows))
        xs = [{name: float(row[name]) for name in FEATURE_NAMES} for row in rows]
        ys = [int(row["Class"]) for row in rows]
        params = {"kind": "arf", "trees": 3}
        print(f"| round | loop (µs per event) | model process, bulk | model process, a list every {args.pace_ms:g} ms |"
              "\n| --- | --- | --- | --- |")
        rounds = []
        for round_ in range(1, args.rounds + 1):
            loop = loop_us(xs, ys, params)
            bulk, bulk_sleeps = asyncio.run(model_process_us(xs, ys, params, args.chunk, 0.0))
            paced, paced_sleeps = asyncio.run(model_process_us(xs, ys, params, args.chunk, args.pace_ms / 1000.0))
            print(f"| {round_} | {loop:.1f} | {bulk:.1f} ({bulk_sleeps} sleeps) | {paced:.1f} ({paced_sleeps} sleeps) |",
                  flush=True)
            rounds.append((loop, bulk, bulk_sleeps, paced, paced_sleeps))
        process = dict(loop_us=min(r[0] for r in rounds), bulk_us=min(r[1] for r in rounds),
                       paced_us=min(r[3] for r in rounds), paced_sleeps=min(r[4] for r in rounds))
    print(key_values(chunk=args.chunk, features=len(names), pickle_encode_us=per_op["pickle_encode"],
                     compact_encode_us=per_op["compact_encode"], pickle_decode_us=per_op["pickle_decode"],
                     compact_decode_us=per_op["compact_decode"], pickle_bytes=len(pickled), compact_bytes=len(compact),
                     results_us=results_us / args.chunk, read_64k_us=reads[1 << 16], read_256k_us=reads[1 << 18],
                     read_1m_us=reads[1 << 20], pipe_rows=args.pipe_rows, pace_ms=args.pace_ms, **process,
                     load=round(load_average(), 2)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
