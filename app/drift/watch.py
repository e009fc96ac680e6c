"""The drift monitors of a worker's partitions, what they alert on, and the mitigation they apply.

Monitored streams, one detector each per partition:

* ``feature:<name>`` for each monitored input feature of a transaction (the feature monitor's
  streams, after its transform);
* ``score``: the fraud probability of each score;
* ``error``: for scores that carry a ``label``, 1 when the decision was wrong, else 0; only with
  ``errors`` (see below).

A score's ``events_learned`` goes with its values: the score monitor's ``settle`` keeps them from
its detectors until the model that made them has settled (see :mod:`app.drift.monitor`).

Each detection becomes a :class:`~app.records.DriftAlert`, with a sentence on what changed
(:func:`app.drift.describe.describe`). On alarms of the streams in
``mitigate_on`` the ``mitigation`` policy (none | reset | challenger, see
:mod:`app.drift.mitigation`) is applied to the partition's live learner, taken from ``learners``
(the scorer: ``learners[partition]`` and ``replace_learner(partition, learner)``); without one the
alert says ``mitigation="unavailable"``. A reset or a promoted challenger is a new model, so the
partition's ``score`` and ``error`` detectors start over. A challenger learns the labelled
transactions of its partition from the first one after the warning.
The last alert of each monitored stream (of any partition) is kept in ``latest``.

``errors=False`` leaves out the ``error`` stream: the service does so in central learning
(``LEARNING_MODE = "central"``, ``docs/scaleout.md``). There a score is a replica's, a model up to
a snapshot behind the learner, and a partition's labelled scores are a share of the examples the
learner predicts in one order (with late labels, which reach no score): the error stream of
record is the central learner's own prequential errors, watched by the learner
(:mod:`app.drift.learner_errors`) over every example. A per-partition stream of the replicas'
errors would page once per partition, later, for each change that stream pages on, and no
mitigation acts on a replica. The ``score`` stream stays: it is what each partition is served.

State: each partition's feature monitor, score monitor and challenger slot live in
:class:`~app.state.checkpointed.CheckpointedStates` on one table (keys ``features:<p>``,
``scores:<p>``, ``challenger:<p>``), checkpointed every ``checkpoint_every`` values (the challenger
every ``challenger_checkpoint_every`` changes, and whenever it starts or leaves its slot), on
revocation and on shutdown, with the offset of the last message taken in: after a crash each takes
in every message once, the ones committed after its checkpoint read back (``read_back[monitor]``)
and fed without alerts (they were published before the crash) or mitigation.

>>> import types
>>> from app.drift.detectors import feature_monitor, score_monitor
>>> from app.records import Score
>>> table = types.SimpleNamespace(data={}, send_changelog=lambda partition, key, value: None)
>>> watch = DriftWatch(table, new_feature_monitor=lambda: feature_monitor(["Amount"]),
...                    new_score_monitor=score_monitor, features=["Amount"])
>>> score = Score(transaction_id="tx-1", event_time=1.7e9, fraud_probability=0.9, decision=True, threshold=0.5,
...               model_version="lr-g0", events_learned=0, processing_time=1.7e9, partition=0, offset=0,
...               label=0)
>>> watch.observe_score(score, offset=0), watch.score_monitors.get(0).updates
([], 2)
"""
from __future__ import annotations

import logging
import time
from typing import Any, AsyncIterator, Callable, Iterable, Mapping, Sequence

from app import metrics
from app.drift.describe import describe
from app.drift.mitigation import ChallengerSlot, NoMitigation
from app.drift.monitor import Detection, DriftMonitor
from app.records import DriftAlert
from app.state.checkpointed import CheckpointedStates
from app.state.signing import Signer

log = logging.getLogger(__name__)


def feature_values(tx, features: Sequence[str]) -> list[tuple[str, float]]:
    """The monitored streams' values of a transaction."""
    return [(f"feature:{name}", float(value)) for name in features if (value := getattr(tx, name, None)) is not None]


def score_values(score, errors: bool = True) -> list[tuple[str, float]]:
    """The monitored streams' values of a score: the probability, and (with ``errors``) the error
    when labelled."""
    values = [("score", float(score.fraud_probability))]
    if errors and score.label is not None:
        values.append(("error", float(bool(score.decision) != bool(score.label))))
    return values


class DriftWatch:
    """Every partition's drift monitors and challenger slot (see the module's docstring); ``signer``
    signs their checkpoints and verifies them before one is loaded."""

    def __init__(self, table, *, new_feature_monitor: Callable[[], DriftMonitor],
                 new_score_monitor: Callable[[], DriftMonitor], features: Sequence[str],
                 mitigation: str = "none", mitigate_on: Sequence[str] = ("error",),
                 policy: Callable[[Callable[[Any], ChallengerSlot]], NoMitigation] | None = None,
                 learners: Any = None, checkpoint_every: int = 40_000, challenger_checkpoint_every: int = 2000,
                 read_back: Mapping[str, Callable[[int, int, int], AsyncIterator[Any]]] | None = None,
                 transactions_topic: str = "transactions", scores_topic: str = "scores",
                 signer: Signer | None = None, errors: bool = True) -> None:
        read_back = read_back or {}
        self.errors = errors
        self.signer = signer
        self.features = list(features)
        self.mitigation, self.mitigate_on = mitigation, tuple(mitigate_on)
        self.learners = learners
        self.transactions_topic, self.scores_topic = transactions_topic, scores_topic
        self.feature_monitors = self._monitor_states(table, "features", new_feature_monitor, checkpoint_every,
                                                     read_back.get("features"), transactions_topic,
                                                     lambda tx: feature_values(tx, self.features))
        self.score_monitors = self._monitor_states(table, "scores", new_score_monitor, checkpoint_every,
                                                   read_back.get("scores"), scores_topic,
                                                   lambda score: score_values(score, self.errors))
        self.challengers: CheckpointedStates[ChallengerSlot] = CheckpointedStates(
            table, "drift challenger", new=ChallengerSlot, dump=ChallengerSlot.to_checkpoint,
            load=ChallengerSlot.from_checkpoint, progress=lambda slot: slot.changes,
            every=challenger_checkpoint_every, prefix=b"challenger:",
            on_checkpoint=lambda partition, _: self._count_checkpoint("challenger", partition),
            catch_up=read_back.get("challenger"), feed=_teach,
            on_caught_up=lambda partition, n: self._count_caught_up("challenger", transactions_topic, partition, n),
            signer=signer)
        self.policy = (policy or (lambda slots: NoMitigation()))(lambda partition: self.challengers.get(partition))
        self._warned = False
        self.latest: dict[str, DriftAlert] = {}  # the last alert of each monitored stream (one per stream)

    def _monitor_states(self, table, monitor: str, new, every: int, catch_up, topic: str, values) -> CheckpointedStates:
        def feed(state: DriftMonitor, message) -> None:  # detections here were alerted before the crash
            for stream, value in values(message):
                state.update(stream, value, getattr(message, "events_learned", None))

        return CheckpointedStates(
            table, f"{monitor} drift monitor", new=new, dump=DriftMonitor.to_checkpoint,
            load=lambda blob: new().restore(blob), progress=lambda m: m.updates, every=every,
            prefix=monitor.encode() + b":", on_checkpoint=lambda partition, _: self._count_checkpoint(monitor, partition),
            catch_up=catch_up, feed=feed,
            on_caught_up=lambda partition, n: self._count_caught_up(monitor, topic, partition, n),
            signer=self.signer)

    @staticmethod
    def _count_checkpoint(monitor: str, partition: int) -> None:
        metrics.DRIFT_CHECKPOINTS.labels(monitor=monitor, partition=str(partition)).inc()

    @staticmethod
    def _count_caught_up(monitor: str, topic: str, partition: int, count: int) -> None:
        metrics.CAUGHT_UP.labels(state=f"drift-{monitor}", topic=topic, partition=str(partition)).inc(count)

    # --- transactions ---------------------------------------------------------------------------
    async def observe_transactions(self, events, challengers: bool) -> list[DriftAlert]:
        """Feed each event's transaction to its partition's feature monitor (and, with
        ``challengers``, its running challenger) unless taken in before a crash; the alerts."""
        out: list[DriftAlert] = []
        for event in events:
            tx, partition, offset = event.value, event.message.partition, event.message.offset
            await self.feature_monitors.ready(partition, offset)
            if not self.feature_monitors.seen(partition, offset):
                out += self.observe_transaction(tx, partition, offset)
                self.feature_monitors.advance(partition, offset)
            if challengers:
                await self.challengers.ready(partition, offset)
                if not self.challengers.seen(partition, offset):
                    self.teach_challenger(tx, partition)
                    self.challengers.advance(partition, offset)
        return out

    def transactions_done(self, partitions, challengers: bool) -> None:
        """The alerts of the transactions just observed are sent: checkpoint when due (a
        checkpoint written before them would let a crash lose them)."""
        for partition in partitions:
            self.feature_monitors.maybe_checkpoint(partition)
            if challengers:
                self.challengers.maybe_checkpoint(partition)
                metrics.DRIFT_CHALLENGER_EVENTS.labels(partition=str(partition)).set(
                    self.policy.challenger_events(partition))

    def observe_transaction(self, tx, partition: int, offset: int) -> list[DriftAlert]:
        """Feed one transaction's monitored features."""
        monitor = self.feature_monitors.get(partition)
        out = []
        for stream, value in feature_values(tx, self.features):
            found = monitor.update(stream, value)
            if found is not None and found.kind == "drift":
                out.append(alert(found, self.mitigate(partition, found), event_time=tx.event_time,
                                 transaction_id=tx.transaction_id, partition=partition, offset=offset,
                                 transform=monitor.label))
        return self._remember(out)

    def teach_challenger(self, tx, partition: int) -> None:
        """A labelled transaction: the partition's running challenger (if any) learns it."""
        if tx.Class is not None:
            self.policy.observe(partition, tx.features(), int(tx.Class))

    # --- scores ---------------------------------------------------------------------------------
    async def observe_scores(self, events) -> list[DriftAlert]:
        """Feed each score event to its partition's score monitor unless taken in before a crash."""
        return await self.observe_scores_at((event.value, event.message.offset) for event in events)

    async def observe_scores_at(self, scored: Iterable[tuple[Any, int]]) -> list[DriftAlert]:
        """:meth:`observe_scores` of (score, its offset on the scores topic) pairs: the scores read
        from the topic, or those the scoring agent wrote there, once the broker gave their offsets."""
        out: list[DriftAlert] = []
        for score, offset in scored:
            await self.score_monitors.ready(score.partition, offset)
            if self.score_monitors.seen(score.partition, offset):
                continue
            out += self.observe_score(score, offset)
            self.score_monitors.advance(score.partition, offset)
        return out

    def scores_done(self, partitions) -> None:
        """The alerts of the scores just observed are sent: checkpoint when due."""
        for partition in partitions:
            self.score_monitors.maybe_checkpoint(partition)

    def observe_score(self, score, offset: int | None = None) -> list[DriftAlert]:
        """Feed one score to the score stream and, when it carries a label, to the error stream."""
        monitor = self.score_monitors.get(score.partition)
        out = []
        for stream, value in score_values(score, self.errors):
            found = monitor.update(stream, value, score.events_learned)
            if found is None:
                continue
            if found.kind == "warning":
                if stream == "error":
                    self.on_warning(score.partition, found)
                continue
            out.append(alert(found, self.mitigate(score.partition, found), event_time=score.event_time,
                             transaction_id=score.transaction_id, partition=score.partition,
                             offset=score.offset, model_version=score.model_version))
        return self._remember(out)

    def _remember(self, alerts: list[DriftAlert]) -> list[DriftAlert]:
        for one in alerts:
            self.latest[one.stream] = one
        return alerts

    # --- mitigation -----------------------------------------------------------------------------
    def _live_learner(self, partition: int):
        learners = getattr(self.learners, "learners", None)
        if learners is None:
            if not self._warned:
                self._warned = True
                log.warning("drift mitigation %r unavailable: no scoring learners in this worker", self.mitigation)
            return None
        return learners.get(partition)

    def on_warning(self, partition: int, detection: Detection) -> None:
        """A warning on the error stream: the challenger policy may start a challenger."""
        if self.mitigation != "challenger":
            return
        learner = self._live_learner(partition)
        if learner is not None and self.policy.on_warning(partition, learner):
            log.info("drift warning on %s partition %s at %s: challenger started", detection.stream, partition,
                     detection.position)
            self._checkpoint_challenger(partition)

    def _checkpoint_challenger(self, partition: int) -> None:
        """A challenger started or left its slot: checkpoint the slot now (a start or a promotion
        comes from the score stream, which the slot's catch-up does not replay)."""
        if partition in self.challengers.states:
            self.challengers.checkpoint(partition)

    def mitigate(self, partition: int, detection: Detection) -> str:
        """Apply the mitigation for ``detection``; the action taken, as written in the alert."""
        if self.mitigation == "none" or detection.stream not in self.mitigate_on:
            return "none"
        learner = self._live_learner(partition)
        if learner is None:
            return "unavailable"
        outcome = self.policy.on_drift(partition, learner)
        if self.mitigation == "challenger":
            self._checkpoint_challenger(partition)  # the slot gave up its challenger (promoted, or too young)
        if outcome.learner is not learner:
            self.learners.replace_learner(partition, outcome.learner)
        if outcome.learner is not learner or outcome.action == "reset":  # a new model: new score and error streams
            monitor = self.score_monitors.get(partition)
            monitor.reset("score")
            monitor.reset("error")
        log.warning("drift on %s partition %s at %s: %s", detection.stream, partition, detection.position,
                    outcome.action)
        return outcome.action

    # --- partitions -----------------------------------------------------------------------------
    async def confirm(self) -> None:
        """Wait for the broker to confirm the checkpoints written (monitors and challengers); a
        refused one stops the worker (:func:`app.outputs.confirmed`)."""
        for states in (self.feature_monitors, self.score_monitors, self.challengers):
            await states.confirm()

    async def revoked(self, lost: dict[str, set[int]]) -> None:
        """Checkpoint and forget the monitors of partitions this worker loses."""
        self.feature_monitors.checkpoint_and_forget(lost.get(self.transactions_topic, ()))
        self.challengers.checkpoint_and_forget(lost.get(self.transactions_topic, ()))
        # a score's monitor is its transaction's partition's: read from the scores topic or fed by
        # the scoring agent (which reads no scores), it goes with either partition
        self.score_monitors.checkpoint_and_forget(
            set(lost.get(self.scores_topic, ())) | set(lost.get(self.transactions_topic, ())))
        await self.confirm()

    async def close(self) -> None:
        """Checkpoint every monitor (a clean shutdown)."""
        for states in (self.feature_monitors, self.score_monitors, self.challengers):
            states.checkpoint_and_forget(states.partitions())
        await self.confirm()
        log.info("checkpointed the drift monitors on shutdown")


def _teach(slot: ChallengerSlot, tx) -> None:
    if tx.Class is not None:
        slot.learn(tx.features(), int(tx.Class))


def alert(detection: Detection, mitigation: str, *, event_time: float, transaction_id: str | None,
          partition: int, offset: int, model_version: str = "", transform: str = "",
          description: str | None = None) -> DriftAlert:
    """The alert of ``detection`` (of a stream whose values went through the transform named
    ``transform``: the feature monitor's label), said in words by ``description`` (by default
    :func:`~app.drift.describe.describe`'s sentence)."""
    return DriftAlert(
        detector=detection.detector, stream=detection.stream, event_time=event_time, position=detection.position,
        mean_before=detection.mean_before, mean_after=detection.mean_after, width=detection.width,
        mitigation=mitigation, model_version=model_version, processing_time=time.time(),
        transaction_id=transaction_id, partition=partition, offset=offset,
        description=describe(detection, partition, transform) if description is None else description,
    )
