"""Drift agents: ADWIN over input features (``transactions``) and over the scorer's score and error
streams (``scores``); every detection goes to ``drift-alerts`` as a :class:`~app.records.DriftAlert`.

Monitored streams, one detector each per partition:

* ``feature:<name>`` for each name in ``DRIFT_FEATURES`` (default ``Amount, V1, V2, V3``), after
  ``DRIFT_FEATURE_TRANSFORM`` (default ``log1p_abs``: ADWIN on raw heavy-tailed amounts false-alarms,
  and the V columns' spread, not their mean, is what moves; see :mod:`app.drift.transforms`).
  Means in the alert are in the transformed scale.
* ``score``: the fraud probability of each score; alarms on increases only (``DRIFT_SCORE_DIRECTION``).
* ``error``: for scores that carry a ``label``, 1 when the decision at the threshold was wrong,
  else 0; alarms on increases only (``DRIFT_ERROR_DIRECTION``).

The monitors are built by :mod:`app.drift.detectors`, which the evaluation harness uses too.

Mitigation (``DRIFT_MITIGATION``: none | reset | challenger) is applied on alarms of the streams in
``DRIFT_MITIGATE_ON`` (default ``error``) to the live learner of the alarm's partition, found in the
scoring agent's ``LEARNERS`` when that agent runs in this worker (a score's partition is its
transaction's partition). When it does not, the alert says ``mitigation="unavailable"``. A reset or a
promoted challenger is a new model: the partition's ``score`` and ``error`` detectors start over. The
challenger learns from the labelled transactions (``Class`` in the event) of its partition, on the
raw transaction features, from the first one that reaches this agent after the warning (which comes
from the scores: under a backlog this agent runs ahead of the scorer, and that transaction lies past
the warning's position).

State: each partition's monitors (their ADWIN windows and counts) are checkpointed to the
changelog-backed table ``DRIFT_CHECKPOINT_TABLE`` (keys ``features:<partition>`` and
``scores:<partition>``) every ``DRIFT_CHECKPOINT_EVERY_VALUES`` values, when the partition is revoked
and on a clean shutdown, and restored before the partition's first event, so a restart does not
empty the windows (ADWIN would need thousands of values to see a change again). Each checkpoint
keeps the offset of the last message it took in (:mod:`app.state.checkpointed`), so after a crash
the monitors take in every message once: those redelivered up to that offset are skipped, and those
committed after the checkpoint are read back (from ``transactions``, or ``scores``: its partitions
are the transactions', as the scorer keys scores like transactions) and fed before the first new one,
without alerts (they were published before the crash) or mitigation. A checkpoint made with other
ADWIN settings (``DRIFT_DELTA``, ``DRIFT_CLOCK``, the warning detector's) or another
``DRIFT_FEATURE_TRANSFORM``, or that cannot be read, is logged and the monitor starts empty.

A running challenger is checkpointed to the same table (key ``challenger:<partition>``) when it
starts and when it leaves its slot at an alarm (those come from the score stream, which its
catch-up does not replay), every ``DRIFT_CHALLENGER_CHECKPOINT_EVERY`` labelled events it learns,
when the partition is revoked and on a clean shutdown, with the offset of the last transaction it
took in; after a crash it is restored and catches up like the feature monitors (it learns every
labelled transaction once). Metrics:
``fraud_drift_checkpoints_total{monitor=features|scores|challenger, partition}``,
``fraud_caught_up_events_total{state=drift-features|drift-scores|drift-challenger}``,
``fraud_drift_challenger_events{partition}`` (with the challenger mitigation: what the running one has
learned, 0 when none runs).
"""
from __future__ import annotations

import logging
import sys
import time
from typing import Any

import settings
from app.worker import app  # first: the worker imports the agents, which import the topics
from app import metrics
from app.drift import ChallengerSlot, Detection, DriftMonitor, make_mitigation
from app.drift.detectors import feature_monitor as new_feature_monitor, score_monitor as new_score_monitor
from app.records import DriftAlert, Score, Transaction
from app.state.changelog import checkpoint_table
from app.state.checkpointed import CheckpointedStates
from app.state.read_back import values_reader
from app.topics import drift_alerts, record_decoder, scores, transactions

log = logging.getLogger(__name__)

CHECKPOINTS = checkpoint_table(app, settings.DRIFT_CHECKPOINT_TABLE, settings.CHECKPOINT_MAX_BYTES,
                               help="Drift monitor checkpoints (ADWIN windows) per source partition.")


def _new_score_monitor() -> DriftMonitor:
    return new_score_monitor(
        warning_delta=settings.DRIFT_WARNING_DELTA if settings.DRIFT_MITIGATION == "challenger" else None)


def feature_values(tx: Transaction) -> list[tuple[str, float]]:
    """The monitored streams' values of a transaction."""
    return [(f"feature:{name}", float(value)) for name in settings.DRIFT_FEATURES
            if (value := getattr(tx, name, None)) is not None]


def score_values(score: Score) -> list[tuple[str, float]]:
    """The monitored streams' values of a score: the probability, and the error when labelled."""
    values = [("score", float(score.fraud_probability))]
    if score.label is not None:
        values.append(("error", float(bool(score.decision) != bool(score.label))))
    return values


_SOURCES = {"features": (settings.TRANSACTIONS_TOPIC, Transaction, feature_values),
            "scores": (settings.SCORES_TOPIC, Score, score_values)}


def monitor_states(table, monitor: str, new, catch_up=None) -> CheckpointedStates[DriftMonitor]:
    """Each partition's ``monitor`` ("features" or "scores") made by ``new``, checkpointed to
    ``table`` every ``DRIFT_CHECKPOINT_EVERY_VALUES`` values; after a crash it takes in the messages
    ``catch_up(partition, start, end)`` reads back (by default from its source topic)."""
    topic, record, values = _SOURCES[monitor]

    def checkpointed(partition: int, _) -> None:
        metrics.DRIFT_CHECKPOINTS.labels(monitor=monitor, partition=str(partition)).inc()

    def feed(state: DriftMonitor, message) -> None:  # detections here were alerted before the crash
        for stream, value in values(message):
            state.update(stream, value)

    def caught_up(partition: int, count: int) -> None:
        metrics.CAUGHT_UP.labels(state=f"drift-{monitor}", topic=topic, partition=str(partition)).inc(count)

    return CheckpointedStates(
        table, f"{monitor} drift monitor", new=new, dump=DriftMonitor.to_checkpoint,
        load=lambda blob: new().restore(blob), progress=lambda m: m.updates,
        every=settings.DRIFT_CHECKPOINT_EVERY_VALUES, prefix=monitor.encode() + b":", on_checkpoint=checkpointed,
        catch_up=catch_up or values_reader(topic, record_decoder(topic, record)), feed=feed, on_caught_up=caught_up)


def challenger_states(table, catch_up=None) -> CheckpointedStates[ChallengerSlot]:
    """Each partition's challenger slot, checkpointed to ``table`` every
    ``DRIFT_CHALLENGER_CHECKPOINT_EVERY`` changes; after a crash a running challenger learns the
    labelled transactions ``catch_up(partition, start, end)`` reads back (by default from
    ``transactions``)."""
    topic = settings.TRANSACTIONS_TOPIC

    def checkpointed(partition: int, _) -> None:
        metrics.DRIFT_CHECKPOINTS.labels(monitor="challenger", partition=str(partition)).inc()

    def caught_up(partition: int, count: int) -> None:
        metrics.CAUGHT_UP.labels(state="drift-challenger", topic=topic, partition=str(partition)).inc(count)

    return CheckpointedStates(
        table, "drift challenger", new=ChallengerSlot, dump=ChallengerSlot.to_checkpoint,
        load=ChallengerSlot.from_checkpoint, progress=lambda slot: slot.changes,
        every=settings.DRIFT_CHALLENGER_CHECKPOINT_EVERY, prefix=b"challenger:", on_checkpoint=checkpointed,
        catch_up=catch_up or values_reader(topic, record_decoder(topic, Transaction)), feed=_teach,
        on_caught_up=caught_up)


def _teach(slot: ChallengerSlot, tx: Transaction) -> None:
    if tx.Class is not None:
        slot.learn(tx.features(), int(tx.Class))


FEATURE_MONITORS = monitor_states(CHECKPOINTS, "features", new_feature_monitor)
SCORE_MONITORS = monitor_states(CHECKPOINTS, "scores", _new_score_monitor)
CHALLENGERS = challenger_states(CHECKPOINTS)
MITIGATION = make_mitigation(settings.DRIFT_MITIGATION, min_events=settings.DRIFT_CHALLENGER_MIN_EVENTS,
                             max_age=settings.DRIFT_CHALLENGER_MAX_AGE,
                             slots=lambda partition: CHALLENGERS.get(partition))
_warned: set[str] = set()


def feature_monitor(partition: int) -> DriftMonitor:
    return FEATURE_MONITORS.get(partition)


def score_monitor(partition: int) -> DriftMonitor:
    return SCORE_MONITORS.get(partition)


def _learners() -> tuple[dict | None, Any]:
    """The scoring agent's live learners and its ``replace_learner``, if it runs in this worker."""
    scoring = sys.modules.get("app.agents.scoring")
    learners = getattr(scoring, "LEARNERS", None)
    replace = getattr(scoring, "replace_learner", None)
    if learners is None or replace is None:
        if "learners" not in _warned:
            _warned.add("learners")
            log.warning("drift mitigation %r unavailable: no scoring learners in this worker",
                        settings.DRIFT_MITIGATION)
        return None, None
    return learners, replace


def on_warning(partition: int, detection: Detection) -> None:
    """A warning on the error stream: the challenger policy may start a challenger."""
    if settings.DRIFT_MITIGATION != "challenger":
        return
    learners, _ = _learners()
    learner = learners.get(partition) if learners else None
    if learner is not None and MITIGATION.on_warning(partition, learner):
        log.info("drift warning on %s partition %s at %s: challenger started", detection.stream, partition,
                 detection.position)
        _checkpoint_challenger(partition)


def _checkpoint_challenger(partition: int) -> None:
    """A challenger started or left its slot: checkpoint the slot now, so that a crash cannot undo
    it (a start or a promotion comes from the score stream, which the slot's catch-up does not replay)."""
    if partition in CHALLENGERS.states:
        CHALLENGERS.checkpoint(partition)


def mitigate(partition: int, detection: Detection) -> str:
    """Apply the configured mitigation for ``detection``; the action taken, as written in the alert."""
    if settings.DRIFT_MITIGATION == "none" or detection.stream not in settings.DRIFT_MITIGATE_ON:
        return "none"
    learners, replace = _learners()
    learner = learners.get(partition) if learners else None
    if learner is None:
        return "unavailable"
    outcome = MITIGATION.on_drift(partition, learner)
    if settings.DRIFT_MITIGATION == "challenger":
        _checkpoint_challenger(partition)  # the slot gave up its challenger (promoted, or too young)
    if outcome.learner is not learner:
        replace(partition, outcome.learner)
    if outcome.learner is not learner or outcome.action == "reset":  # a new model: new score and error streams
        monitor = score_monitor(partition)
        monitor.reset("score")
        monitor.reset("error")
    log.warning("drift on %s partition %s at %s: %s", detection.stream, partition, detection.position, outcome.action)
    return outcome.action


def alert(detection: Detection, mitigation: str, *, event_time: float, transaction_id: str | None,
          partition: int, offset: int, model_version: str = "") -> DriftAlert:
    return DriftAlert(
        detector=detection.detector, stream=detection.stream, event_time=event_time, position=detection.position,
        mean_before=detection.mean_before, mean_after=detection.mean_after, width=detection.width,
        mitigation=mitigation, model_version=model_version, processing_time=time.time(),
        transaction_id=transaction_id, partition=partition, offset=offset,
    )


def observe_transaction(tx: Transaction, partition: int, offset: int) -> list[DriftAlert]:
    """Feed one transaction's monitored features."""
    monitor = feature_monitor(partition)
    out = []
    for stream, value in feature_values(tx):
        found = monitor.update(stream, value)
        if found is not None and found.kind == "drift":
            out.append(alert(found, mitigate(partition, found), event_time=tx.event_time,
                             transaction_id=tx.transaction_id, partition=partition, offset=offset))
    return out


def teach_challenger(tx: Transaction, partition: int) -> None:
    """A labelled transaction: the partition's running challenger (if any) learns it."""
    if tx.Class is not None:
        MITIGATION.observe(partition, tx.features(), int(tx.Class))


def observe_score(score: Score) -> list[DriftAlert]:
    """Feed one score to the score stream and, when it carries a label, to the error stream."""
    monitor = score_monitor(score.partition)
    out = []
    for stream, value in score_values(score):
        found = monitor.update(stream, value)
        if found is None:
            continue
        if found.kind == "warning":
            if stream == "error":
                on_warning(score.partition, found)
            continue
        out.append(alert(found, mitigate(score.partition, found), event_time=score.event_time,
                         transaction_id=score.transaction_id, partition=score.partition, offset=score.offset,
                         model_version=score.model_version))
    return out


async def publish(alerts: list[DriftAlert]) -> None:
    for item in alerts:
        await drift_alerts.send(key=(item.transaction_id or item.stream).encode(), value=item)
        metrics.DRIFT_ALERTS.labels(stream=item.stream).inc()
        metrics.EVENTS_OUT.labels(topic=settings.DRIFT_ALERTS_TOPIC).inc()


if settings.DRIFT_FEATURES or settings.DRIFT_MITIGATION == "challenger":

    @app.agent(transactions)
    async def monitor_transactions(stream):
        """ADWIN over the configured input features of each transaction; with the challenger
        mitigation, a running challenger learns the labelled ones."""
        challengers = settings.DRIFT_MITIGATION == "challenger"
        async for events in stream.take_events(settings.BATCH_SIZE, within=settings.BATCH_WITHIN_S):
            out: list[DriftAlert] = []
            for event in events:
                tx, partition, offset = event.value, event.message.partition, event.message.offset
                await FEATURE_MONITORS.ready(partition, offset)
                if not FEATURE_MONITORS.seen(partition, offset):  # else: taken in before a crash
                    out += observe_transaction(tx, partition, offset)
                    FEATURE_MONITORS.advance(partition, offset)
                if challengers:
                    await CHALLENGERS.ready(partition, offset)
                    if not CHALLENGERS.seen(partition, offset):
                        teach_challenger(tx, partition)
                        CHALLENGERS.advance(partition, offset)
            await publish(out)
            for partition in {event.message.partition for event in events}:
                FEATURE_MONITORS.maybe_checkpoint(partition)
                if challengers:
                    CHALLENGERS.maybe_checkpoint(partition)
                    metrics.DRIFT_CHALLENGER_EVENTS.labels(partition=str(partition)).set(
                        MITIGATION.challenger_events(partition))


if settings.DRIFT_MONITOR_SCORES:

    @app.agent(scores)
    async def monitor_scores(stream):
        """ADWIN over the fraud-score stream and the error stream of labelled scores."""
        topic_in = settings.SCORES_TOPIC
        async for events in stream.take_events(settings.BATCH_SIZE, within=settings.BATCH_WITHIN_S):
            out: list[DriftAlert] = []
            for event in events:
                score, offset = event.value, event.message.offset
                await SCORE_MONITORS.ready(score.partition, offset)
                if SCORE_MONITORS.seen(score.partition, offset):  # taken in before a crash
                    continue
                out += observe_score(score)
                SCORE_MONITORS.advance(score.partition, offset)
            metrics.EVENTS_IN.labels(topic=topic_in).inc(len(events))
            await publish(out)
            for partition in {event.value.partition for event in events}:
                SCORE_MONITORS.maybe_checkpoint(partition)


@app.on_partitions_revoked.connect
async def _on_partitions_revoked(sender, revoked, **kwargs) -> None:
    """Checkpoint the monitors of partitions this worker loses; a new owner restores them."""
    lost = {tp.partition for tp in revoked if tp.topic == settings.TRANSACTIONS_TOPIC}
    FEATURE_MONITORS.checkpoint_and_forget(lost)
    CHALLENGERS.checkpoint_and_forget(lost)
    SCORE_MONITORS.checkpoint_and_forget({tp.partition for tp in revoked if tp.topic == settings.SCORES_TOPIC})


@app.on_before_shutdown.connect
async def _on_shutdown(sender, **kwargs) -> None:
    """Checkpoint every monitor on a clean shutdown (the producer is flushed after)."""
    FEATURE_MONITORS.checkpoint_and_forget(FEATURE_MONITORS.partitions())
    SCORE_MONITORS.checkpoint_and_forget(SCORE_MONITORS.partitions())
    CHALLENGERS.checkpoint_and_forget(CHALLENGERS.partitions())
    log.info("checkpointed the drift monitors on shutdown")
