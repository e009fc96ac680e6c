"""The worker's health and model pages, next to ``/metrics`` on its web port.

``GET /livez``
    200 when the worker's event loop answers (it serves the request) and so does the model host (a
    ``("ping", None)`` round trip within ``ping_timeout_s``); 503 with the reason otherwise. A worker
    that fails it is stuck or has lost its models: restart it.
``GET /readyz``
    200 when partitions of the transactions topic are assigned to the worker, no rebalance is under
    way, its tables are recovered and (when the scoring agent runs here) the model of every
    assigned partition is open; 503 otherwise, with ``{"ready": false, "missing": [...]}`` and a
    ``Retry-After`` header.
``GET /model``
    ``{"partitions": {"<p>": {...}}}``: the model kind and version, whether it was restored from a
    checkpoint, events learned (and since the last checkpoint), when this worker last wrote its
    checkpoint (Unix time; null before the first), the stream positions of its state (last offset
    taken in, per topic), the transactions waiting for their label, and the prequential metrics
    (``window``: exact over the last ``window_size`` labelled events; ``cumulative``: since the
    start, the AUCs from binned scores with the bound on their error, ``roc_auc_error_bound`` and
    ``pr_auc_error_bound``, see :mod:`app.learning.evaluation`; null before the first label; a
    metric that is undefined, say an AUC without positives, is null). In central learning
    (``LEARNING_MODE = "central"``) each partition's entry is the worker's replica, and ``"learner"``
    is the central learner's entry on the worker that runs it
    (:meth:`~app.learning.central_learner.CentralLearner.report`: its version, the examples received
    and learned, the sample rate, the examples offset taken in, its last snapshot and its
    prequential record); on any other worker it is null, and ``"learner_absent"`` says why.
``GET /drift``
    ``{"alerts": {"<stream>": {...}}}``: the last drift alert of each monitored stream since the
    worker started (:attr:`app.drift.watch.DriftWatch.latest`), as published. In central learning,
    on a worker built with the central learner watching its errors (``DRIFT_MONITOR_SCORES``),
    ``"learner"`` is the learner's error monitor while it runs here
    (:meth:`~app.learning.central_learner.CentralLearner.error_report`: its detector, the values
    fed, ADWIN's window, the values that waited for the model to settle, its last alert), null on
    the other workers.
``POST /score``
    One transaction's fraud probability and decision now, by the model of its partition, routed to
    the worker that owns it; nothing is learned (:mod:`app.http_score`).

The models of a partition are otherwise opened by its first event: :func:`open_assigned_models`,
run by a timer, opens them as soon as the tables are recovered, so that an idle worker is ready
too. ``/model`` is served when the scoring agent or the central learner runs in the worker,
``/drift`` when the drift agent does or the central learner watches its errors.

>>> readiness_missing(rebalancing=False, recovered=True, topic="transactions", assigned={0, 1}, loaded={0})
['the models of partitions [1] are not open yet']
>>> readiness_missing(rebalancing=False, recovered=True, topic="transactions", assigned={0}, loaded=None)
[]
>>> finite({"roc_auc": float("nan"), "count": 3})
{'roc_auc': None, 'count': 3}
"""
from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any

from app import http_score
from app.learning.learner_set import OpFailed
from app.records import Transaction
from app.serialization.avro import validate_transaction

log = logging.getLogger(__name__)

PING_TIMEOUT_S = 2.0
RETRY_AFTER_S = 5
OPEN_MODELS_INTERVAL_S = 1.0


def readiness_missing(*, rebalancing: bool, recovered: bool, topic: str, assigned: set[int],
                      loaded: set[int] | None) -> list[str]:
    """What keeps a worker from being ready; ``loaded`` is None when it holds no models."""
    missing = []
    if rebalancing:
        missing.append("a rebalance is under way")
    if not recovered:
        missing.append("the tables are not recovered yet")
    if not assigned:
        missing.append(f"no partition of {topic} is assigned to this worker")
    if loaded is not None and assigned - loaded:
        missing.append(f"the models of partitions {sorted(assigned - loaded)} are not open yet")
    return missing


def assigned_partitions(app, topic: str) -> set[int]:
    """The partitions of ``topic`` assigned to this worker in the current assignment."""
    return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic}


def recovered(app) -> bool:
    """Whether the tables' active partitions are recovered for the current assignment (Faust
    clears the flag when a rebalance starts and sets it once recovery completes)."""
    return bool(app.tables.actives_ready)


async def ping(scorer, timeout_s: float) -> str | None:
    """None when the model host answers a no-op within ``timeout_s``; else why not."""
    try:
        result, = await asyncio.wait_for(_ping(scorer), timeout_s)
    except asyncio.TimeoutError:
        return f"the model host did not answer within {timeout_s:g} s"
    except Exception as exc:
        return f"the model host failed: {exc}"
    return result.message if isinstance(result, OpFailed) else None


async def _ping(scorer) -> list:
    host = await scorer.host()
    return await host.submit([("ping", None)])


async def open_assigned_models(app, scorer, topic: str) -> list[int]:
    """Once the tables are recovered, open the models of the assigned partitions of ``topic`` not
    open yet (restored from their checkpoints, as the first event would); the partitions opened.
    One whose partition was revoked meanwhile is dropped again (it was given no event)."""
    if app.rebalancing or not recovered(app):
        return []
    opened = []
    for partition in sorted(assigned_partitions(app, topic) - set(scorer.partitions)):
        await scorer.states.get(partition)
        opened.append(partition)
    if opened:
        gone = set(opened) - assigned_partitions(app, topic)
        if gone:
            await scorer.states.checkpoint_and_forget(sorted(gone))
        log.info("opened the models of partitions %s before their first event", sorted(set(opened) - gone))
    return opened


def finite(values: dict) -> dict:
    """``values`` with NaN and infinities as None (JSON has no such numbers)."""
    return {key: None if isinstance(value, float) and not math.isfinite(value) else value
            for key, value in values.items()}


async def model_report(scorer, central=None, examples_assigned: bool = False) -> dict[str, Any]:
    """What ``/model`` shows (see the module's docstring) of ``scorer`` (None: no partition) and, in
    central learning, of the central learner ``central`` (:func:`learner_report`); the metrics are
    computed off the event loop."""
    partitions = {}
    for partition, state in sorted(scorer.partitions.items() if scorer is not None else ()):
        learner = state.learner
        prequential = None
        if state.evaluator.count:
            report = await asyncio.to_thread(state.evaluator.snapshot().report)
            prequential = {window: finite(values) for window, values in report.items()}
            prequential["window_size"] = state.evaluator.window
        partitions[str(partition)] = {
            "model": learner.name, "version": learner.version, "restored": learner.restored,
            "events_learned": learner.events_learned, "learned_since_checkpoint": learner.learned_since_checkpoint,
            "last_checkpoint": scorer.checkpointed_at.get(partition),
            "positions": dict(scorer.states.positions.get(partition, {})),
            "labels_pending": len(state.pending), "prequential": prequential,
        }
    report: dict[str, Any] = {"partitions": partitions}
    if central is not None:
        report.update(await learner_report(central, examples_assigned))
    return report


async def learner_report(learner, examples_assigned: bool) -> dict[str, Any]:
    """The central learner's part of ``/model``: ``{"learner": {...}}`` while it runs on this worker
    (its report, NaN and infinities as None), else ``{"learner": None, "learner_absent": why}``;
    ``examples_assigned`` tells whether this worker owns partition 0 of the examples topic (then the
    learner starts with the first example it is given)."""
    report = await learner.report()
    if report is None:
        where = f"partition 0 of {learner.topic}"
        why = (f"{where} is assigned to this worker: the learner starts with its first example" if examples_assigned
               else f"the learner runs on the worker that owns {where}, not on this one")
        return {"learner": None, "learner_absent": why}
    if report["prequential"] is not None:
        report["prequential"] = {key: finite(values) if isinstance(values, dict) else values
                                 for key, values in report["prequential"].items()}
    return {"learner": report}


def drift_report(watch, learner=None) -> dict[str, Any]:
    """What ``/drift`` shows: the last alert of each stream that ``watch`` (None: no drift agent)
    monitors and, with the central ``learner`` (one that watches its errors), its error monitor."""
    latest = watch.latest.items() if watch is not None else ()
    report: dict[str, Any] = {"alerts": {stream: finite(alert.asdict()) for stream, alert in sorted(latest)}}
    if learner is not None:
        errors = learner.error_report()
        if errors is not None and errors["last_alert"] is not None:
            errors = {**errors, "last_alert": finite(errors["last_alert"])}
        report["learner"] = errors
    return report


def register(app, service, *, ping_timeout_s: float = PING_TIMEOUT_S, retry_after_s: int = RETRY_AFTER_S,
             partition_of=None) -> None:
    """Put the pages (and the timer that opens the assigned partitions' models) on ``app``;
    ``partition_of(key)`` is the partition ``/score`` gives a transaction id (by default Kafka's
    default partitioner over the transactions topic's partitions: :func:`app.http_score.register`)."""
    scorer, learner, topic = service.scorer, service.learner, service.topics.transactions.get_topic_name()

    @app.page("/livez")
    async def livez(web, request):  # noqa: ANN001 - Faust view signature
        if scorer is not None:
            started = time.perf_counter()
            problem = await ping(scorer, ping_timeout_s)
            if problem is not None:
                return web.json({"live": False, "reason": problem}, status=503)
            return web.json({"live": True, "model_host_ms": round((time.perf_counter() - started) * 1000, 3)})
        return web.json({"live": True})

    @app.page("/readyz")
    async def readyz(web, request):  # noqa: ANN001 - Faust view signature
        missing = readiness_missing(
            rebalancing=bool(app.rebalancing), recovered=recovered(app), topic=topic,
            assigned=assigned_partitions(app, topic), loaded=set(scorer.partitions) if scorer is not None else None)
        if missing:
            return web.json({"ready": False, "missing": missing}, status=503,
                            headers={"Retry-After": str(retry_after_s)})
        return web.json({"ready": True})

    if scorer is not None or learner is not None:
        @app.page("/model")
        async def model(web, request):  # noqa: ANN001 - Faust view signature
            examples_assigned = learner is not None and 0 in assigned_partitions(app, learner.topic)
            return web.json(await model_report(scorer, learner, examples_assigned))

    if scorer is not None:
        @app.timer(interval=OPEN_MODELS_INTERVAL_S, name="app.http.open_assigned_models")
        async def open_models() -> None:
            try:
                await open_assigned_models(app, scorer, topic)
            except Exception:
                log.exception("opening the models of the assigned partitions failed")

        http_score.register(
            app, scorer, topic, retry_after_s=retry_after_s, assigned=lambda: assigned_partitions(app, topic),
            not_ready=lambda: readiness_missing(rebalancing=bool(app.rebalancing), recovered=recovered(app),
                                                topic=topic, assigned=assigned_partitions(app, topic), loaded=None),
            avro_loads=lambda: service.topics.codec(topic, Transaction, validate_transaction).loads,
            partition_of=partition_of)

    errors_of = learner if learner is not None and learner.error_watch is not None else None
    if service.drift is not None or errors_of is not None:
        @app.page("/drift")
        async def drift(web, request):  # noqa: ANN001 - Faust view signature
            return web.json(drift_report(service.drift, errors_of))
