"""Model hosts: operations applied in submission order, in this process or in a model process; a
model process that dies fails what waits for it, and what comes after."""
from __future__ import annotations

import asyncio
import io
import os
import pickle
import signal

import pytest

from app.learning.learner_set import LearnerSet, OpFailed
from app.learning.model_host import LocalHost, ModelHostError, ProcessHost
from app.learning.pipeline import model_factory

LR = model_factory(kind="lr")


def request(request_id, ops):
    """A request frame as :class:`ProcessHost` writes it."""
    from app.learning.model_host import _REQUEST, lane_of

    body = pickle.dumps(ops)
    return _REQUEST.pack(len(body), request_id, lane_of(ops)) + body


def results(out: bytes) -> list[tuple[int, list]]:
    """(request id, results) of each result frame in ``out``, in the order written."""
    from app.learning.model_host import _RESULT

    frames, at = [], 0
    while at < len(out):
        size, request_id = _RESULT.unpack_from(out, at)
        at += _RESULT.size
        frames.append((request_id, pickle.loads(out[at:at + size])))
        at += size
    return frames


def xs(n):
    return [{"V1": float(i % 7), "V2": float(i % 3) - 1.0} for i in range(n)]


async def run_steps(host, n=200, chunk=9):
    await host.submit([("open", "k", None, LR, "")])
    futures = []
    for start in range(0, n, chunk):
        futures.append(host.submit([("step", "k", x, (start + j) % 2) for j, x in enumerate(xs(n)[start:start + chunk])]))
    out = []
    for future in futures:
        out += await future
    blob, = await host.submit([("checkpoint", "k", {"n": n})])
    await host.close()
    return out, blob


def test_a_model_process_gives_the_probabilities_of_the_same_operations_in_this_process():
    local, _ = asyncio.run(run_steps(LocalHost()))

    async def remote():
        return await run_steps(await ProcessHost.start())

    remote_probabilities, blob = asyncio.run(remote())
    assert remote_probabilities == local and len(set(local)) > 10
    from app.learning import OnlineLearner

    restored = OnlineLearner.from_checkpoint(blob)
    assert restored.events_learned == 200 and restored.meta == {"n": 200}


def test_a_dead_model_process_fails_the_waiting_and_the_next_operations():
    exits = []

    async def run():
        host = await ProcessHost.start(on_exit=exits.append)
        await host.submit([("open", 0, None, LR, "")])
        os.kill(host.process.pid, signal.SIGKILL)
        waiting = host.submit([("step", 0, {"V1": 1.0}, None)])
        with pytest.raises(ModelHostError, match="exited"):
            await waiting
        with pytest.raises(ModelHostError):
            await host.submit([("step", 0, {"V1": 1.0}, None)])
        folder_left = os.path.exists(host.spill_dir)  # before close(): an owner may exit at once
        await host.close()
        return folder_left

    assert asyncio.run(run()) is False
    assert len(exits) == 1 and "code -9" in str(exits[0])


def test_a_model_process_ignores_sigterm_and_stops_when_its_input_closes():
    async def run():
        host = await ProcessHost.start()
        assert os.getpgid(host.process.pid) != os.getpgid(0)  # a signal to the worker's group misses it
        info, = await host.submit([("open", 0, None, LR, "")])
        os.kill(host.process.pid, signal.SIGTERM)
        await asyncio.sleep(0.3)
        assert host.process.returncode is None
        await host.submit([("step", 0, {"V1": 1.0}, 1)])
        await host.close()
        return info, host.process.returncode

    info, code = asyncio.run(run())
    assert info.version == "lr-g0" and code == 0


def test_new_models_and_checkpoints_are_reported_but_steps_are_not():
    calls = []
    learners = LearnerSet(lambda: calls.append(1))
    learners.apply([("open", 0, None, LR, "")])
    learners.apply([("step", 0, {"V1": 1.0}, 1), ("learn", 0, {"V1": 0.0}, 0)])
    assert len(calls) == 1
    blob, _, _ = learners.apply([("checkpoint", 0, {}), ("reset", 0), ("drop", 0)])
    assert len(calls) == 3
    learners.apply([("open", 1, None, LR, ""), ("put", 1, blob)])
    assert len(calls) == 5 and learners.learners[1].events_learned == 2


def test_a_failed_operation_does_not_stop_the_ones_after_it():
    learners = LearnerSet()
    results = learners.apply([("open", 0, None, LR, ""), ("learn", 0, {"V1": "x"}, 1), ("step", 0, {"V1": 1.0}, None)])
    assert isinstance(results[1], OpFailed) and "learn on key 0" in results[1].message
    assert results[2] == 0.5
    assert isinstance(learners.apply([("open", 1, b"junk", None, "")])[0], OpFailed)


def test_a_large_result_goes_through_a_file_not_the_pipe(tmp_path):
    import io
    import pickle
    import struct

    from app.learning.model_host import _SPILLED, _load_spilled, serve

    pad = "x" * (1 << 20)
    stdin = io.BytesIO(request(1, [("open", "k", None, LR, "")]) + request(2, [("checkpoint", "k", {"pad": pad})]))
    stdout = io.BytesIO()
    serve(stdin, stdout, LearnerSet(), str(tmp_path))
    out = stdout.getvalue()
    size, first_id = struct.unpack(">IQ", out[:12])
    second = out[12 + size:]
    assert len(second) < 1000  # the megabyte did not go down the pipe: the path of its file did
    flagged, second_id = struct.unpack(">IQ", second[:12])
    assert flagged & _SPILLED and (first_id, second_id) == (1, 2)
    path = second[12:].decode()
    assert len(path) == flagged & ~_SPILLED and os.path.dirname(path) == str(tmp_path)
    blob, = _load_spilled(path)
    assert not os.listdir(tmp_path)  # read once, then gone
    from app.learning import OnlineLearner

    assert OnlineLearner.from_checkpoint(blob).meta == {"pad": pad}


def test_a_model_process_gives_large_results_in_order_and_removes_its_folder_when_closed():
    pad = "x" * (1 << 20)

    async def run():
        host = await ProcessHost.start()
        await host.submit([("open", "k", None, LR, "")])
        big = host.submit([("checkpoint", "k", {"pad": pad})])
        after = host.submit([("step", "k", {"V1": 1.0}, None)])
        (blob,), (probability,) = await big, await after
        left = os.listdir(host.spill_dir)
        await host.close()
        return blob, probability, left, os.path.exists(host.spill_dir)

    blob, probability, left, folder_exists = asyncio.run(run())
    from app.learning import OnlineLearner

    assert OnlineLearner.from_checkpoint(blob).meta == {"pad": pad}
    assert probability == 0.5 and left == [] and not folder_exists


def test_lists_and_results_larger_than_a_read_cross_the_pipe_whole_in_small_reads():
    from app.learning.model_host import _READ_BYTES, _SPILL_BYTES

    pad = "x" * (_SPILL_BYTES // 2)  # more than two reads' worth, less than a spilled result
    wide = {f"V{i}": float(i) for i in range(3 * _READ_BYTES // 16)}  # a list of about 3 reads

    async def run():
        host = await ProcessHost.start()
        pipe_read_bytes = host.process._transport.get_pipe_transport(1).max_size
        await host.submit([("open", "k", None, LR, "")])
        first = host.submit([("step", "k", wide, 1)])
        big = host.submit([("checkpoint", "k", {"pad": pad})])
        after = host.submit([("step", "k", wide, None)])
        (p1,), (blob,), (p2,) = await first, await big, await after
        spilled = os.listdir(host.spill_dir)
        await host.close()
        return pipe_read_bytes, p1, blob, p2, spilled

    pipe_read_bytes, p1, blob, p2, spilled = asyncio.run(run())
    from app.learning import OnlineLearner

    assert len(pickle.dumps(wide)) > 2 * _READ_BYTES and pipe_read_bytes == _READ_BYTES
    assert OnlineLearner.from_checkpoint(blob).meta == {"pad": pad} and spilled == []
    assert p1 == 0.5 and p2 > 0.5  # learned the wide event as fraud before predicting it again


def test_a_model_process_whose_owner_is_killed_removes_its_folder():
    async def run():
        host = await ProcessHost.start()
        await host.submit([("open", 0, None, LR, "")])
        existed = os.path.isdir(host.spill_dir)
        host._reader.cancel()  # this side does nothing more, as if gone
        with pytest.raises(asyncio.CancelledError):
            await host._reader
        host.process.stdin.close()  # what a kill -9 of the owner does to the pipe; close() is never called
        code = await asyncio.wait_for(host.process.wait(), timeout=30)
        return existed, code, os.path.exists(host.spill_dir)

    existed, code, exists_after = asyncio.run(run())
    assert existed and code == 0 and not exists_after


def test_a_model_process_that_hangs_is_killed_after_the_timeout_and_fails_what_waits():
    exits = []

    async def run():
        host = await ProcessHost.start(on_exit=exits.append)
        await host.submit([("open", 0, None, LR, "")])  # the child's start (importing River) may take seconds here
        host.timeout_s = 1.0
        await asyncio.sleep(1.5)  # idle, with nothing waiting: not a hang
        assert host.process.returncode is None
        await host.submit([("step", 0, {"V1": 1.0}, 1)])
        os.kill(host.process.pid, signal.SIGSTOP)  # alive, but answers nothing
        started = asyncio.get_running_loop().time()
        with pytest.raises(ModelHostError, match="no result for 1 s"):
            await host.submit([("step", 0, {"V1": 1.0}, None)])
        waited = asyncio.get_running_loop().time() - started
        await host.close()
        return waited, host.process.returncode

    waited, code = asyncio.run(run())
    assert 0.9 <= waited < 5.0
    assert code == -signal.SIGKILL
    assert len(exits) == 1 and "no result for 1 s and was killed" in str(exits[0])


def test_a_slow_backlog_that_keeps_answering_is_not_a_hang():
    async def run():
        host = await ProcessHost.start()
        await host.submit([("open", 0, None, LR, "")])
        host.timeout_s = 0.5
        futures = [host.submit([("step", 0, {"V1": float(i)}, i % 2)] * 500) for i in range(60)]  # seconds in all
        results = [await future for future in futures]
        await host.close()
        return len(results), host._hung

    assert asyncio.run(run()) == (60, False)


def test_the_first_result_waits_for_the_child_to_start_not_for_the_timeout():
    async def run():
        host = await ProcessHost.start(timeout_s=0.25)  # importing River takes longer than that
        started = asyncio.get_running_loop().time()
        await host.submit([("open", 0, None, LR, "")])
        first = asyncio.get_running_loop().time() - started
        await host.close()
        return first, host._hung

    first, hung = asyncio.run(run())
    assert hung is False, first


def test_a_predict_that_comes_after_queued_stream_lists_is_applied_before_them_and_the_stream_keeps_its_order():
    x = {"V1": 1.0}
    stream = [request(1, [("open", "k", None, LR, "")])]
    stream += [request(2 + i, [("step", "k", x, 1)]) for i in range(4)]
    stdin = io.BytesIO(b"".join(stream) + request(9, [("predict", "k", x)]) + request(10, [("learn", "k", x, 0)]))
    stdout = io.BytesIO()
    serve_all(stdin, stdout)
    frames = results(stdout.getvalue())
    # the first read takes in every list: the predict goes first (before the open: it fails, learning nothing)
    assert [request_id for request_id, _ in frames] == [9, 1, 2, 3, 4, 5, 10]
    assert isinstance(frames[0][1][0], OpFailed)
    local = LearnerSet()
    expected = local.apply([("open", "k", None, LR, "")] + [("step", "k", x, 1)] * 4 + [("learn", "k", x, 0)])
    assert [result for _, (result,) in frames[2:]] == expected[1:]  # the stream's results are the in-order ones


def serve_all(stdin, stdout):
    from app.learning.model_host import serve

    serve(stdin, stdout, LearnerSet())


def test_a_model_process_answers_a_predict_before_the_stream_lists_submitted_ahead_of_it():
    forest = model_factory(kind="arf", trees=2)  # some ms per list of 200 steps
    lists = [[("step", "k", {"V1": float(i % 5), "V2": float((n + i) % 3)}, i % 2) for i in range(200)]
             for n in range(8)]  # 7 kB each: all in the pipe at once, as a worker's batch of chunks is

    async def run():
        host = await ProcessHost.start()
        await host.submit([("open", "k", None, forest, "")])
        order = []
        stream = [host.submit(ops) for ops in lists]
        for i, future in enumerate(stream):
            future.add_done_callback(lambda _, i=i: order.append(f"stream-{i}"))
        predict = host.submit([("predict", "k", {"V1": 1.0, "V2": 1.0})])
        predict.add_done_callback(lambda _: order.append("predict"))
        (probability, members, version, events_learned), = await predict
        stream_results = [await future for future in stream]
        checkpoint, = await host.submit([("checkpoint", "k", {})])
        await host.close()
        return order, events_learned, stream_results, checkpoint

    order, events_learned, stream_results, checkpoint = asyncio.run(run())
    assert order.index("predict") < 2, order  # behind the list being applied when it came, at most
    assert [o for o in order if o != "predict"] == [f"stream-{i}" for i in range(8)]
    assert events_learned <= 200  # the model it saw had learned one list at most
    local = LearnerSet()
    local.apply([("open", "k", None, forest, "")])
    assert stream_results == [local.apply(ops) for ops in lists]  # the predict changed no stream result
    from app.learning import OnlineLearner

    assert OnlineLearner.from_checkpoint(checkpoint).events_learned == 200 * 8


def test_a_model_process_answers_a_predict_between_two_operations_of_a_stream_list():
    forest = model_factory(kind="arf", trees=2)
    ops = [("step", "k", {"V1": float(i % 5), "V2": float(i % 3)}, i % 2) for i in range(1500)]  # a second or so

    async def run():
        host = await ProcessHost.start()
        await host.submit([("open", "k", None, forest, "")])
        stream = host.submit(ops)
        seen = []  # events learned by the model each predict saw, while the list was not answered
        while not stream.done():
            (_, _, _, events_learned), = await host.submit([("predict", "k", {"V1": 1.0, "V2": 1.0})])
            if not stream.done():
                seen.append(events_learned)
            await asyncio.sleep(0.01)
        results = await stream
        await host.close()
        return seen, results

    seen, results = asyncio.run(run())
    assert any(0 < n < 1500 for n in seen), seen  # answered in the middle of the list
    local = LearnerSet()
    local.apply([("open", "k", None, forest, "")])
    assert results == local.apply(ops)


def test_a_predict_sent_in_the_stream_lane_sees_every_list_sent_before_it():
    from app.learning.model_host import STREAM, URGENT

    async def run():
        host = await ProcessHost.start()
        await host.submit([("open", "k", None, LR, "")])
        for i in range(20):
            host.submit([("step", "k", {"V1": float(j)}, j % 2) for j in range(50)])
        (_, _, _, events_learned), = await host.submit([("predict", "k", {"V1": 1.0})], lane=STREAM)
        with pytest.raises(ValueError, match="read-only"):
            host.submit([("step", "k", {"V1": 1.0}, 1)], lane=URGENT)
        await host.close()
        return events_learned

    assert asyncio.run(run()) == 20 * 50


def test_local_host_applies_a_predict_in_submission_order():
    async def run():
        host = LocalHost()
        await host.submit([("open", 0, None, LR, "")])
        host.submit([("step", 0, {"V1": 1.0}, 1)])
        (_, _, version, events_learned), = await host.submit([("predict", 0, {"V1": 1.0})])
        return version, events_learned

    assert asyncio.run(run()) == ("lr-g0", 1)
