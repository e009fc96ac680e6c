"""The composition step: settings become the service's objects, and the enabled agents go on the app.

:func:`build` is called once, by :mod:`app.worker`, with the Faust app and the settings. It makes
the topics, the changelog-backed tables, the state owners (:class:`~app.scoring.Scorer`,
:class:`~app.anomaly.partitions.AnomalyDetectors`, :class:`~app.drift.watch.DriftWatch`), registers
the agents of ``AGENTS`` (each gets the objects it works with: the drift agent gets the scorer
whose learners it may reset; with ``scoring`` the anomaly and drift work on the transactions is
done on the scoring agent's batches, one pass over the topic, and the drift work on the scores on
the scores it wrote), the revocation and shutdown hooks (once, for every owner), the
``/metrics`` page, the health and model pages (:mod:`app.http`) and the consumer-lag
reporter. Nothing else reads the settings to build these.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

from app import commits, configured, gc_tuning, http, metrics, observability
from app.agents import anomaly as anomaly_agents
from app.agents import drift as drift_agents
from app.agents import learner as learner_agents
from app.agents import lifecycle
from app.agents import alignment as alignment_agents
from app.agents import scoring as scoring_agents
from app.agents import terminals as terminal_agents
from app.anomaly.partitions import AnomalyDetectors
from app.drift.watch import DriftWatch
from app.learning.central_learner import CentralLearner
from app.learning.model_host import start_host
from app.records import Label, Score, Transaction
from app.records.transaction import feature_picker
from app.scoring import Scorer
from app.scoring.alignment import EventTimeAlignment
from app.scoring.replica import Replica
from app.scoring.windows import ScoringWindows, TerminalLabels
from app.serialization.avro import validate_label, validate_transaction
from app.state.read_back import read_back
from app.state.snapshot_follower import SnapshotFollower
from app.state.send_queue import QueuedChangelog, SendQueue
from app.state.table_view import TableView
from app.state.signing import Signer, state_signer
from app.topics import Topics

log = logging.getLogger(__name__)

AGENT_NAMES = ("scoring", "anomaly", "drift")
MODEL_PROCESS_LOST_EXIT_CODE = 70  # EX_SOFTWARE


@dataclass
class Service:
    """What :func:`build` made: the topics and the state owners of the enabled agents."""

    topics: Topics
    scorer: Scorer | None = None
    anomaly: AnomalyDetectors | None = None
    drift: DriftWatch | None = None
    learner: CentralLearner | None = None
    agents: list[Any] = field(default_factory=list)


def build(app, s) -> Service:
    """Build the service of settings ``s`` on ``app`` (see the module's docstring)."""
    unknown = [name for name in s.AGENTS if name not in AGENT_NAMES]
    if unknown:
        raise ValueError(f"unknown agent {unknown[0]!r} in FRAUD_AGENTS (known: {', '.join(AGENT_NAMES)})")
    service = Service(Topics(app, s))
    topics = service.topics
    signer = state_signer(s.STATE_KEY)  # every checkpoint is signed with it and verified before it is loaded
    sends = SendQueue(lambda: app.producer)  # the records written per transaction (tables, terminal labels)
    owners = []
    if "scoring" in s.AGENTS:
        service.scorer = scorer(app, s, topics, signer=signer, sends=sends)
    if s.LEARNING_MODE == "central" and s.CENTRAL_LEARNER:  # first among the owners: its last snapshot needs the model host
        service.learner = central_learner(app, s, host=service.scorer.host if service.scorer else None, signer=signer,
                                          alerts_topic=topics.drift_alerts)
        owners.append(service.learner)
    # the anomaly and drift agents' work on the transactions (and the drift agent's on the scores):
    # on the scoring agent's batches (and scores) when it runs here, else on agents of their own
    beside, after_scores = [], None
    if "anomaly" in s.AGENTS:
        scorer_windows = service.scorer.windows if service.scorer is not None else None
        service.anomaly = anomaly_detectors(app, s, topics, signer=signer, sends=sends,
                                            terminals=scorer_windows.terminal_table if scorer_windows else None)
        if service.scorer is not None:
            beside.append(anomaly_agents.detect_step(topics, service.anomaly, counts_input=False))
        else:
            service.agents.append(anomaly_agents.register(
                app, topics, service.anomaly, batch_size=s.BATCH_SIZE, within_s=s.BATCH_WITHIN_S, counts_input=True))
    if "drift" in s.AGENTS:
        service.drift = drift_watch(app, s, topics, learners=service.scorer, signer=signer)
        challengers = s.DRIFT_MITIGATION == "challenger"
        if service.scorer is not None:  # the scoring agent's steps on its transactions and scores
            if s.DRIFT_FEATURES or challengers:
                beside.append(drift_agents.transactions_step(topics, service.drift, challengers=challengers))
            if s.DRIFT_MONITOR_SCORES:
                after_scores = drift_agents.scores_step(topics, service.drift)
        else:
            service.agents += drift_agents.register(
                app, topics, service.drift, batch_size=s.BATCH_SIZE, within_s=s.BATCH_WITHIN_S,
                monitor_features=bool(s.DRIFT_FEATURES), challengers=challengers,
                monitor_scores=s.DRIFT_MONITOR_SCORES)
    if service.scorer is not None:
        aligner = alignment(app, s, topics, service.scorer.replica)
        scoring_agents.register(
            app, topics, service.scorer, batch_size=s.BATCH_SIZE, within_s=s.SCORING_BATCH_WITHIN_S,
            labels_within_s=s.BATCH_WITHIN_S, in_flight=s.SCORING_BATCHES_IN_FLIGHT, in_process=not s.MODEL_PROCESS,
            labels_in_flight=s.LABEL_BATCHES_IN_FLIGHT,
            report_interval_s=s.PREQUENTIAL_REPORT_INTERVAL_S, label_wait_max_s=s.LABEL_WAIT_MAX_S,
            aligner=aligner, beside=beside, after_scores=after_scores)
        windows = service.scorer.windows
        if windows is not None:
            writer = TerminalLabels(windows.features, QueuedChangelog(windows.writer_table, sends))
            terminal_agents.register(app, windows.topic, writer,
                                     batch_size=s.BATCH_SIZE, within_s=s.BATCH_WITHIN_S)
        owners.append(service.scorer)
        if aligner is not None:
            owners.append(aligner)
    owners += [owner for owner in (service.anomaly, service.drift) if owner is not None]
    lifecycle.register(app, owners)

    @app.page("/metrics")
    async def prometheus_metrics(web, request):  # noqa: ANN001 - Faust view signature
        return web.bytes(metrics.render(), content_type="text/plain; version=0.0.4")

    observability.register(app)
    commits.register(app, s.COMMIT_PROGRESS_INTERVAL_S)  # fraud_committed_offset and its log line
    http.register(app, service)  # /livez, /readyz, /model, /drift
    return service


def scorer(app, s, topics: Topics, signer: Signer | None = None, sends: SendQueue | None = None) -> Scorer:
    """The scorer of settings ``s``: its tables on ``app``, its model host, its catch-up reader. In
    central learning it has no model checkpoints (the learner's snapshots are the model's), so no
    ``CHECKPOINT_TABLE`` either: its changelog topic would stay empty. The tables written per
    transaction (pending features, parked labels, cards) and the terminal labels go through
    ``sends`` (:mod:`app.state.send_queue`; by default a queue of their own)."""
    sends = sends or SendQueue(lambda: app.producer)
    gc_tuning.set_thresholds(s.GC_THRESHOLDS)
    checkpoints = None if s.LEARNING_MODE == "central" else configured.checkpoint_table(
        s, app, s.CHECKPOINT_TABLE, help="Model checkpoint per source partition.")
    pending = app.Table(s.PENDING_TABLE, default=None, key_type=bytes, value_type=bytes,
                        partitions=s.TOPIC_PARTITIONS,
                        help="Features of transactions waiting for their label, by transaction id.")
    parked = app.Table(s.PARKED_TABLE, default=None, key_type=bytes, value_type=bytes, partitions=s.TOPIC_PARTITIONS,
                       help="Labels that came before their transaction, by transaction id.")
    decoders = {s.TRANSACTIONS_TOPIC: topics.codec(s.TRANSACTIONS_TOPIC, Transaction, validate_transaction).loads,
                s.LABELS_TOPIC: topics.codec(s.LABELS_TOPIC, Label, validate_label).loads}

    options = configured.read_back_options(s)

    async def read(source: str, partition: int, start: int, end: int):
        async for key, value, offset in read_back(source, partition, start, end, decoders[source], **options):
            yield offset, (key, value)

    async def host():
        return await start_host(not s.MODEL_PROCESS, gc_freeze=s.GC_FREEZE, on_exit=model_process_exited,
                                timeout_s=s.MODEL_HOST_TIMEOUT_S)

    return Scorer(
        host, checkpoints, QueuedChangelog(pending, sends), model_factory=configured.model_factory(s),
        features=feature_picker(s.MODEL_FEATURES), warm_start_path=s.WARM_START_PATH,
        transactions_topic=s.TRANSACTIONS_TOPIC, labels_topic=s.LABELS_TOPIC, decision_threshold=s.DECISION_THRESHOLD,
        model_chunk=s.MODEL_CHUNK, checkpoint_every=s.CHECKPOINT_EVERY_EVENTS,
        checkpoint_every_s=s.CHECKPOINT_EVERY_S or None, pending_max=s.PENDING_MAX,
        pending_ttl_s=s.PENDING_TTL_S, pending_expired_remembered=s.PENDING_EXPIRED_REMEMBERED,
        label_wait_idle_s=s.LABEL_WAIT_IDLE_S, max_event_time_skew_s=s.MAX_EVENT_TIME_SKEW_S, prequential_window=s.PREQUENTIAL_WINDOW, gc_freeze=s.GC_FREEZE,
        read_back=read, record=Transaction, signer=signer, explanations=s.SCORE_EXPLANATIONS,
        parked=QueuedChangelog(parked, sends), parked_max=s.PARKED_MAX, parked_ttl_s=s.PARKED_TTL_S or None,
        windows=scoring_windows(app, s, sends),
        **(central_scoring(app, s, signer) if s.LEARNING_MODE == "central" else {"sample_rate": s.LEARN_SAMPLE_RATE}))


def alignment(app, s, topics: Topics, replica: Replica | None = None) -> alignment_agents.Aligner | None:
    """The :class:`~app.agents.alignment.Aligner` of the worker's ``transactions`` partitions
    (``ALIGN_MAX_SKEW_S``, ``ALIGN_IDLE_S``; None when the skew is 0) and its timer on ``app``; in
    central learning, kept in step with the other workers by the ``replica``'s newest snapshot."""
    if not s.ALIGN_MAX_SKEW_S:
        return None
    if not s.MODEL_PROCESS:
        raise ValueError("FRAUD_ALIGN_MAX_SKEW_S needs FRAUD_MODEL_PROCESS=true: with the models in the worker "
                         "each batch is acknowledged once taken, and the alignment holds events unacknowledged")
    return alignment_agents.register(app, topics.transactions, EventTimeAlignment(s.ALIGN_MAX_SKEW_S, s.ALIGN_IDLE_S),
                                     interval_s=s.ALIGN_CHECK_S, snapshot=replica.newest if replica else None)


def central_scoring(app, s, signer: Signer | None) -> dict:
    """The scorer's part of central learning (``LEARNING_MODE = "central"``): the worker's model
    :class:`~app.scoring.replica.Replica` (the warm start or a fresh model until the first snapshot),
    kept at the newest snapshot of ``SNAPSHOTS_TOPIC`` that ``signer`` verifies by a
    :class:`~app.state.snapshot_follower.SnapshotFollower` task, and where the examples go
    (``EXAMPLES_TOPIC``), and the :class:`~app.scoring.staleness.StalenessBound` of
    ``STALENESS_MAX_EXAMPLES`` / ``STALENESS_MAX_WAIT_S`` (none when 0); as keyword arguments of
    :class:`~app.scoring.Scorer`."""
    from app.learning import snapshots
    from app.scoring.staleness import StalenessBound

    signer = signer or state_signer(s.STATE_KEY)
    follower = SnapshotFollower(s.SNAPSHOTS_TOPIC, lambda blob: snapshots.decode(blob, signer),
                                **configured.read_back_options(s))
    replica = Replica(configured.model_factory(s), s.WARM_START_PATH, newest=lambda: follower.newest(replica.name),
                      ready=lambda: follower.ready)
    examples = app.topic(s.EXAMPLES_TOPIC, key_type=bytes, value_type=bytes, key_serializer="raw",
                         value_serializer="raw", partitions=1)

    @app.task
    async def follow_snapshots() -> None:
        """Keep the newest model snapshot at hand for the replica."""
        await follower.run()

    bound = StalenessBound(s.STALENESS_MAX_EXAMPLES, s.STALENESS_MAX_WAIT_S) if s.STALENESS_MAX_EXAMPLES else None
    return {"replica": replica, "staleness": bound,
            "send_example": lambda key, value: examples.send_soon(key=key, value=value)}


def central_learner(app, s, host=None, signer: Signer | None = None, alerts_topic=None) -> CentralLearner:
    """The central learner of settings ``s`` (``LEARNING_MODE = "central"``) and its agent on ``app``:
    it reads ``EXAMPLES_TOPIC`` (one partition: the worker that owns it learns), learns in ``host()``
    (the scorer's model host; without one, a host of its own), and writes snapshots signed by
    ``signer`` to ``SNAPSHOTS_TOPIC`` (one partition, compacted, messages up to
    ``CHECKPOINT_MAX_BYTES``), where it also finds the newest one when it takes over. With
    ``DRIFT_MONITOR_SCORES`` and an ``alerts_topic`` it watches its own errors (the deployment's
    error stream in this mode: :func:`app.configured.error_monitor`) and sends their drift alerts to
    ``alerts_topic``."""
    from app.state.last_records import last_records

    signer = signer or state_signer(s.STATE_KEY)
    options = configured.read_back_options(s)
    # internal: Faust creates it (one partition) before the worker subscribes to it
    examples = app.topic(s.EXAMPLES_TOPIC, key_type=bytes, value_type=bytes, key_serializer="raw",
                         value_serializer="raw", partitions=1, internal=True)
    if (app.conf.producer_max_request_size or 0) < s.CHECKPOINT_MAX_BYTES:
        app.conf.producer_max_request_size = s.CHECKPOINT_MAX_BYTES
    snapshots_topic = app.topic(s.SNAPSHOTS_TOPIC, key_type=bytes, value_type=bytes, key_serializer="raw",
                                value_serializer="raw", partitions=1, compacting=True, internal=True,
                                config={"max.message.bytes": str(s.CHECKPOINT_MAX_BYTES), "segment.ms": "600000"})
    declared = []

    async def declare() -> None:  # once, before the first read or write (a first start finds no topic)
        if not declared:
            await snapshots_topic.maybe_declare()
            declared.append(True)

    async def publish(key: bytes, value: bytes):
        await declare()
        return await app.producer.send(s.SNAPSHOTS_TOPIC, key, value, 0, None, None)

    async def last_snapshots() -> list[bytes]:
        await declare()
        records = await last_records(s.SNAPSHOTS_TOPIC, 0, count=5, **options)
        return [value for _, value, _ in records if value is not None]

    async def read(start: int, end: int):
        async for _, value, offset in read_back(s.EXAMPLES_TOPIC, 0, start, end, lambda blob: blob, **options):
            yield offset, value

    if host is None:
        own_host = []

        async def host():
            if not own_host:
                own_host.append(await start_host(not s.MODEL_PROCESS, gc_freeze=s.GC_FREEZE,
                                                 on_exit=model_process_exited, timeout_s=s.MODEL_HOST_TIMEOUT_S))
            return own_host[0]

    learner = CentralLearner(host, lambda: configured.learner_book(s), configured.model_factory(s), signer=signer,
                             last_snapshots=last_snapshots, read_back=read, publish=publish,
                             warm_start_path=s.WARM_START_PATH, topic=s.EXAMPLES_TOPIC,
                             **(learner_errors(s, alerts_topic) if s.DRIFT_MONITOR_SCORES and alerts_topic else {}))
    learner_agents.register(app, examples, learner, batch_size=s.BATCH_SIZE, within_s=s.BATCH_WITHIN_S,
                            snapshot_check_s=min(1.0, s.SNAPSHOT_EVERY_S or 1.0),
                            report_interval_s=s.PREQUENTIAL_REPORT_INTERVAL_S)
    return learner


def learner_errors(s, alerts_topic) -> dict:
    """The central learner's error watch (:class:`~app.drift.learner_errors.LearnerErrorWatch` of
    :func:`app.configured.error_monitor`) and the sender of its alerts to ``alerts_topic``, as
    keyword arguments of :class:`~app.learning.central_learner.CentralLearner`."""
    from app.drift.learner_errors import LearnerErrorWatch

    return {"error_watch": lambda: LearnerErrorWatch(lambda: configured.error_monitor(s)),
            "send_alerts": drift_agents.publisher(alerts_topic)}


def scoring_windows(app, s, sends: SendQueue | None = None) -> ScoringWindows | None:
    """The scorer's window features of settings ``s`` (None when ``WINDOW_FEATURES`` is off):
    :func:`~app.configured.transaction_features`, the card table (``CARD_WINDOWS_TABLE``, partitioned
    like the transactions), the terminal table (``TERMINAL_WINDOWS_TABLE``, partitioned like the
    terminal labels, written by the terminal-labels agent) with the copy of it every worker follows
    (:class:`~app.state.table_view.TableView`), and the terminal-labels topic
    (``TERMINAL_LABELS_TOPIC``, by default ``<APP_ID>-terminal-labels``) on ``app``. A warm-start
    model trained on other features than these refuses to be served. The card table's records and
    the terminal labels go through ``sends`` (:mod:`app.state.send_queue`; by default a queue of
    their own)."""
    features = configured.transaction_features(s)
    check_warm_start_features(s, features)
    if not s.WINDOW_FEATURES:
        return None
    cards = app.Table(s.CARD_WINDOWS_TABLE, default=None, key_type=bytes, value_type=bytes,
                      partitions=s.TOPIC_PARTITIONS, help="Window panes per card id (packed), in its transactions' partition.")
    terminals, view = terminal_windows(app, s)
    topic = app.topic(s.TERMINAL_LABELS_TOPIC or f"{s.APP_ID}-terminal-labels", key_type=bytes, value_type=bytes,
                      key_serializer="raw", value_serializer="raw", partitions=s.TOPIC_PARTITIONS, internal=True)
    sends = sends or SendQueue(lambda: app.producer)
    labels_topic = topic.get_topic_name()
    windows = ScoringWindows(features, QueuedChangelog(cards, sends), view,
                             send_label=lambda key, value: sends.send(labels_topic, None, key, value))
    windows.topic, windows.writer_table = topic, terminals
    return windows


def terminal_windows(app, s) -> tuple[Any, TableView]:
    """The terminal table (``TERMINAL_WINDOWS_TABLE``, partitioned like the terminal labels, written
    by the terminal-labels agent) on ``app``, and the copy of it this worker follows
    (:class:`~app.state.table_view.TableView`)."""
    terminals = app.Table(s.TERMINAL_WINDOWS_TABLE, default=None, key_type=bytes, value_type=bytes,
                          partitions=s.TOPIC_PARTITIONS,
                          help="Window panes per terminal id from the labels received (JSON), in its labels' partition.")
    view = TableView(terminals.changelog_topic.get_topic_name(), **configured.read_back_options(s))

    @app.task
    async def follow_terminal_windows() -> None:
        """Keep this worker's copy of the whole terminal table current."""
        await view.run()

    metrics.WINDOW_KEYS.labels(table="terminals", partition="all").set_function(lambda: len(view.data))
    metrics.TABLE_VIEW_READ_TO.labels(table="terminals").set_function(lambda: sum(view.read_to.values()))
    return terminals, view


def check_warm_start_features(s, features) -> None:
    """Refuse (``ValueError``) to serve the warm-start model ``WARM_START_PATH`` with other input
    than it learned: its ``meta["model_input"]`` (written by the Spark warm start:
    :func:`app.backfill.warm_start.model_input_meta`) names its raw fields and window features and
    their parameters, which must be ``MODEL_FEATURES`` and, with ``WINDOW_FEATURES``, ``features``'
    (none without). A model from a build that recorded only ``meta["warm_start"]["window_features"]``
    is refused when that is true (those windows are not the scorer's)."""
    path = s.WARM_START_PATH
    if not path:
        return
    from app.learning import OnlineLearner

    meta = OnlineLearner.load(path).meta or {}
    served = {"raw": list(s.MODEL_FEATURES), "window_features": list(features.names) if s.WINDOW_FEATURES else [],
              "window_params": features.params() if s.WINDOW_FEATURES else None}
    learned = meta.get("model_input")
    if learned is not None:
        differ = [key for key, value in served.items() if learned.get(key) != value]
        if differ:
            raise ValueError(
                f"the warm-start model {path} learned other input than this worker would serve it ({', '.join(differ)}): "
                f"it learned {({key: learned.get(key) for key in differ})}, the worker would serve "
                f"{({key: served[key] for key in differ})}; set FRAUD_MODEL_FEATURES, FRAUD_WINDOW_FEATURES and the "
                f"window settings as when it was trained, or train it again")
    elif (meta.get("warm_start") or {}).get("window_features"):
        raise ValueError(f"the warm-start model {path} learned window features this worker does not compute "
                         f"(it was trained by an earlier build): train it again")


def model_process_exited(error: Exception) -> None:
    """The models are gone with their process (it died, or hung and was killed after
    ``MODEL_HOST_TIMEOUT_S``): stop at once, as a crash, so that the worker is restarted and
    restores them from their checkpoints (nothing unsent has been acknowledged)."""
    log.critical("%s: the worker stops (exit code %d) to restart from the model checkpoints",
                 error, MODEL_PROCESS_LOST_EXIT_CODE)
    logging.shutdown()
    os._exit(MODEL_PROCESS_LOST_EXIT_CODE)


def anomaly_detectors(app, s, topics: Topics, signer: Signer | None = None, terminals: Any = None,
                      sends: SendQueue | None = None) -> AnomalyDetectors:
    """Each partition's Half-Space-Trees detector of settings ``s``, with its table on ``app``; with
    ``ANOMALY_WINDOW_FEATURES``, the window features with its own card table
    (``ANOMALY_CARD_WINDOWS_TABLE``, its records through ``sends``, by default a queue of its own)
    and ``terminals``, the scorer's copy of the terminal table when the scorer runs in this worker
    (else one of its own)."""
    table = configured.checkpoint_table(s, app, s.ANOMALY_CHECKPOINT_TABLE,
                                        help="Anomaly detector checkpoint per source partition.")
    windows = None
    if s.ANOMALY_WINDOW_FEATURES:
        cards = app.Table(s.ANOMALY_CARD_WINDOWS_TABLE, default=None, key_type=bytes, value_type=bytes,
                          partitions=s.TOPIC_PARTITIONS,
                          help="The anomaly detectors' window panes per card id (packed), in its transactions' partition.")
        if terminals is None:
            terminals = terminal_windows(app, s)[1]
        cards = QueuedChangelog(cards, sends or SendQueue(lambda: app.producer))
        windows = ScoringWindows(configured.transaction_features(s), cards, terminals, send_label=None,
                                 table="anomaly-cards", count_missing=False)

    catch_up = configured.values_reader(s, s.TRANSACTIONS_TOPIC,
                                        topics.record_decoder(s.TRANSACTIONS_TOPIC, Transaction, validate_transaction))
    return AnomalyDetectors(
        table, lambda: configured.anomaly_detector(s), every=s.ANOMALY_CHECKPOINT_EVERY_EVENTS, catch_up=catch_up,
        windows=windows,
        transactions_topic=s.TRANSACTIONS_TOPIC, signer=signer)


def drift_watch(app, s, topics: Topics, learners: Scorer | None, signer: Signer | None = None) -> DriftWatch:
    """The drift monitors of settings ``s``, with their table on ``app``; mitigation acts on the
    live learners of ``learners`` (the scorer, when it runs in this worker). In central learning the
    scores' ``error`` stream is left out: the central learner watches its own (:func:`learner_errors`)."""
    table = configured.checkpoint_table(s, app, s.DRIFT_CHECKPOINT_TABLE,
                                        help="Drift monitor checkpoints (ADWIN windows) per source partition.")
    transactions = topics.record_decoder(s.TRANSACTIONS_TOPIC, Transaction)
    return DriftWatch(
        table, new_feature_monitor=lambda: configured.feature_monitor(s),
        new_score_monitor=lambda: configured.score_monitor(s),
        features=s.DRIFT_FEATURES, mitigation=s.DRIFT_MITIGATION, mitigate_on=s.DRIFT_MITIGATE_ON,
        policy=lambda slots: configured.mitigation(s, slots=slots),
        learners=learners, checkpoint_every=s.DRIFT_CHECKPOINT_EVERY_VALUES,
        challenger_checkpoint_every=s.DRIFT_CHALLENGER_CHECKPOINT_EVERY,
        read_back={"features": configured.values_reader(s, s.TRANSACTIONS_TOPIC, transactions),
                   "scores": configured.values_reader(s, s.SCORES_TOPIC, topics.record_decoder(s.SCORES_TOPIC, Score)),
                   "challenger": configured.values_reader(s, s.TRANSACTIONS_TOPIC, transactions)},
        transactions_topic=s.TRANSACTIONS_TOPIC, scores_topic=s.SCORES_TOPIC, signer=signer,
        errors=s.LEARNING_MODE != "central")
