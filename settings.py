"""Every tunable of the service, in one place.

Each value can be overridden from the environment with the ``FRAUD_`` prefix and the setting's
name in upper case, for example ``FRAUD_KAFKA_BROKER=kafka:9092`` or ``FRAUD_ARF_TREES=5``.
Types follow the defaults: ints, floats, booleans (``1/true/yes/on``) and comma-separated lists.

>>> import settings
>>> settings.TRANSACTIONS_TOPIC
'transactions'
"""
from __future__ import annotations

import os
from typing import Any

PREFIX = "FRAUD_"


def _env(name: str, default: Any) -> Any:
    raw = os.environ.get(PREFIX + name)
    if raw is None:
        return default
    if isinstance(default, bool):
        value = raw.strip().lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(f"{PREFIX}{name}={raw!r} is not a boolean (use true/false)")
    if isinstance(default, (list, tuple)):
        return [item.strip() for item in raw.split(",") if item.strip()]
    if default is None:
        return raw or None
    try:
        return type(default)(raw)
    except ValueError as exc:
        raise ValueError(f"{PREFIX}{name}={raw!r} is not a valid {type(default).__name__}") from exc


# --- connections -------------------------------------------------------------------------------
APP_ID = _env("APP_ID", "fraud-detector")
KAFKA_BROKER = _env("KAFKA_BROKER", "kafka://127.0.0.1:9092")
SCHEMA_REGISTRY_URL = _env("SCHEMA_REGISTRY_URL", "http://127.0.0.1:8081/apis/ccompat/v7")
WEB_HOST = _env("WEB_HOST", "127.0.0.1")
WEB_PORT = _env("WEB_PORT", 6066)
DATA_DIR = _env("DATA_DIR", "")  # Faust's state folder; empty = <app id>-data in the working dir

# --- topics ------------------------------------------------------------------------------------
TRANSACTIONS_TOPIC = _env("TRANSACTIONS_TOPIC", "transactions")
LABELS_TOPIC = _env("LABELS_TOPIC", "labels")
SCORES_TOPIC = _env("SCORES_TOPIC", "scores")
ANOMALIES_TOPIC = _env("ANOMALIES_TOPIC", "anomalies")
DRIFT_ALERTS_TOPIC = _env("DRIFT_ALERTS_TOPIC", "drift-alerts")
DEAD_LETTERS_TOPIC = _env("DEAD_LETTERS_TOPIC", "dead-letters")
# 8: up to 8 workers share the work (docs/scaleout.md). A topic that exists keeps its count.
TOPIC_PARTITIONS = _env("TOPIC_PARTITIONS", 8)
TOPIC_REPLICAS = _env("TOPIC_REPLICAS", 1)

# --- stream processing -------------------------------------------------------------------------
BATCH_SIZE = _env("BATCH_SIZE", 200)  # stream.take(n, ...)
BATCH_WITHIN_S = _env("BATCH_WITHIN_S", 0.05)
# The records one poll of the consumer hands to the agents, all topics together. Faust stops fetching a
# partition once a message of it finds its agent's buffer 80% full, but delivers what was fetched, and
# when a message finds the buffer full it waits for room with every other topic of the worker behind
# it (then the partition is never stopped). So the buffer's last 20% must hold a poll from each of the
# partitions of a topic (the buffer is sized from this): else an agent that waits (a scorer holding its
# batch for the central learner's snapshot) stops the agents of the other topics (the learner).
BROKER_MAX_POLL_RECORDS = _env("BROKER_MAX_POLL_RECORDS", 100)  # 0: no limit (Faust's default)
# The most one fetch takes from a partition (a larger first record still comes whole). A poll hands
# over the records of the partitions in the order they were fetched, a partition's whole fetch before
# the next partition's, so this bounds how far the partitions of a topic run apart in the order the
# agents see them: with 1 MB (Faust's default, ~3,000 transactions) the scorers of 8 partitions took
# ~24,000 transactions of one partition's event time before the others', and the central model learned
# them that far out of step with its predictions.
CONSUMER_MAX_FETCH_BYTES = _env("CONSUMER_MAX_FETCH_BYTES", 32 * 1024)
# How long the producer gathers records into one request before sending it (Kafka's own default
# since 4.0): scores, changelog records and alerts wait at most this long, and the worker makes far
# fewer produce requests (docs/performance.md, "The producer's linger").
# 0: each record goes out as soon as no request to its broker is in flight.
PRODUCER_LINGER_MS = _env("PRODUCER_LINGER_MS", 5)
BROKER_COMMIT_INTERVAL_S = _env("BROKER_COMMIT_INTERVAL_S", 1.0)
# The longest the broker holds the worker's fetch while no new data has come (Faust sets 1,500 ms).
# The consumer has one fetch at a time in flight to a broker, and leaves out of it the partitions
# whose fetched records are still being processed: a fetch of only the quiet partitions (labels,
# changelogs) then stops the busy one from being fetched for this long.
CONSUMER_FETCH_MAX_WAIT_MS = _env("CONSUMER_FETCH_MAX_WAIT_MS", 20)
# The least data the broker gathers for that fetch before it answers (or the wait above is over).
# aiokafka's 1 answers as soon as anything has come: at a few hundred transactions a second, each
# fetch then brings one or two, and the round trips cost the worker and the broker more than the
# records. 2,000 bytes are about six transactions.
CONSUMER_FETCH_MIN_BYTES = _env("CONSUMER_FETCH_MIN_BYTES", 2000)
# How long the group waits for a silent worker before handing its partitions to another (Faust's default: 60 s).
BROKER_SESSION_TIMEOUT_S = _env("BROKER_SESSION_TIMEOUT_S", 15.0)

# Which agents the worker runs (comma-separated): scoring, anomaly, drift.
AGENTS = _env("AGENTS", ["scoring", "anomaly", "drift"])

# --- online learning (scoring agent) --------------------------------------------------------------
# Garbage collection in the worker (app/gc_tuning.py): freeze the long-lived objects (the model, the
# libraries) after a learner is built or restored and after each checkpoint, so that collections skip
# them (a full collection otherwise stalls the event loop for 50-130 ms); GC_THRESHOLDS: gc.set_threshold.
GC_FREEZE = _env("GC_FREEZE", True)
GC_THRESHOLDS = _env("GC_THRESHOLDS", [])  # e.g. 10000,20,20; empty = Python's (700,10,10)
# The transaction fields that are model input, in order (app.records.transaction.model_features): numeric
# fields of the Transaction record other than Class, fraud_scenario and event_time. The ULB data set's
# columns by default; for data without V1..V28 (the Handbook's simulator) e.g. FRAUD_MODEL_FEATURES=Amount.
MODEL_FEATURES = _env("MODEL_FEATURES", [*(f"V{i}" for i in range(1, 29)), "Amount"])
# The model (app/learning/pipeline.py): arf | lr | arf+lr (forest blended with scaled logistic regressions).
MODEL_KIND = _env("MODEL_KIND", "arf+lr")
ARF_TREES = _env("ARF_TREES", 10)
ARF_WEIGHT = _env("ARF_WEIGHT", 1 / 3)  # arf+lr: the forest's share of the blended probability
ARF_GRACE_PERIOD = _env("ARF_GRACE_PERIOD", 50)
ARF_MAX_FEATURES = _env("ARF_MAX_FEATURES", "sqrt")  # sqrt, log2 or a number of features
ARF_LAMBDA = _env("ARF_LAMBDA", 6)
LR_LEARNING_RATE = _env("LR_LEARNING_RATE", 0.01)
LR_POSITIVE_WEIGHT = _env("LR_POSITIVE_WEIGHT", 10.0)  # arf+lr: a second regression weighs frauds this much (1 = none)
# Model state: a checkpoint per partition in a changelog-backed table, every N learned events and on shutdown.
CHECKPOINT_EVERY_EVENTS = _env("CHECKPOINT_EVERY_EVENTS", 10_000)
# ...and every S seconds while a partition has something unsaved (labels learned, or transactions scored past
# its saved position: a crash reads back what came after it); 0: on events only.
CHECKPOINT_EVERY_S = _env("CHECKPOINT_EVERY_S", 60.0)
CHECKPOINT_TABLE = _env("CHECKPOINT_TABLE", "model-checkpoints")
CHECKPOINT_MAX_BYTES = _env("CHECKPOINT_MAX_BYTES", 64 * 1024 * 1024)  # producer/topic message size limit
WARM_START_PATH = _env("WARM_START_PATH", "")  # a checkpoint file loaded when a partition has none yet
# Delayed labels: features of unlabelled transactions wait in a changelog-backed table.
PENDING_TABLE = _env("PENDING_TABLE", "pending-features")
PENDING_MAX = _env("PENDING_MAX", 100_000)  # per partition; the oldest are expired beyond it
# In event time: older transactions expire. Keep it longer than the labels' delay: a label comes after
# transactions up to that delay younger than its own, and one taken after them finds its features gone.
PENDING_TTL_S = _env("PENDING_TTL_S", 8 * 24 * 3600.0)
PENDING_EXPIRED_REMEMBERED = _env("PENDING_EXPIRED_REMEMBERED", 200_000)  # ids whose late label counts as expired
LABEL_WAIT_IDLE_S = _env("LABEL_WAIT_IDLE_S", 5.0)  # a label ahead of its transaction waits while transactions flow
LABEL_WAIT_MAX_S = _env("LABEL_WAIT_MAX_S", 1.0)  # ...but a batch of labels waits at most this long in all;
# a label whose transaction has still not come is then parked, and learned when that transaction is scored
PARKED_TABLE = _env("PARKED_TABLE", "parked-labels")
PARKED_MAX = _env("PARKED_MAX", 100_000)  # parked labels per partition; the earliest parked go beyond it
PARKED_TTL_S = _env("PARKED_TTL_S", 0.0)  # in event time behind the partition's transactions (0: PENDING_TTL_S)
MAX_EVENT_TIME_SKEW_S = _env("MAX_EVENT_TIME_SKEW_S", 30 * 24 * 3600.0)  # a transaction further ahead of its
# partition's latest event time is an invalid-value dead letter (0: no bound)
# Prequential metrics, over the last N labelled events (exact) and cumulative (binned, with a stated error
# bound: app.learning.evaluation), refreshed every S seconds.
PREQUENTIAL_WINDOW = _env("PREQUENTIAL_WINDOW", 10_000)
PREQUENTIAL_REPORT_INTERVAL_S = _env("PREQUENTIAL_REPORT_INTERVAL_S", 10.0)
DECISION_THRESHOLD = _env("DECISION_THRESHOLD", 0.5)
SEED = _env("SEED", 42)
# The scorer's batches: up to BATCH_SIZE transactions, or what came within this many seconds (a short
# wait keeps latency low at moderate rates; under a backlog the batches fill up anyway).
SCORING_BATCH_WITHIN_S = _env("SCORING_BATCH_WITHIN_S", 0.005)
# The models run in a process of their own (predicting and learning on one core while the worker
# decodes and sends on another), or in the worker's process; batches go to them in chunks of MODEL_CHUNK.
MODEL_PROCESS = _env("MODEL_PROCESS", True)
MODEL_CHUNK = _env("MODEL_CHUNK", 10)
# Each score also carries the blend members' probabilities and the three features that moved its
# logistic regression most (Score.members, Score.top_features; null when off: app.learning.explain).
# Off by default: it costs the model process, the service's bottleneck with the default model, CPU per
# event (see docs/performance.md), and a score grows from about 70 to 150 bytes.
SCORE_EXPLANATIONS = _env("SCORE_EXPLANATIONS", False)
# A model process that gives no result for this long while operations wait for one (its first result,
# after its start: at least 120 s) is hung: it is killed and the worker exits with code 70, as when it
# dies (app.learning.model_host).
MODEL_HOST_TIMEOUT_S = _env("MODEL_HOST_TIMEOUT_S", 30.0)
# With a model process, how many batches may have their scores being sent (awaiting the broker's
# confirmation) while the next batch is taken: a batch's scores go out without waiting for those, and
# the model process has the next batches queued while the worker sends (with 2 it waited for work
# under a backlog: docs/performance.md).
SCORING_BATCHES_IN_FLIGHT = _env("SCORING_BATCHES_IN_FLIGHT", 4)
# With a model process, how many batches of late labels may be being learned while the next is planned
# and sent to it: each waits behind the transactions sent before it, so one at a time learns fewer
# labels per second than a busy scorer takes transactions, and labels would fall behind and expire.
LABEL_BATCHES_IN_FLIGHT = _env("LABEL_BATCHES_IN_FLIGHT", 4)

# --- central learning (docs/scaleout.md) ----------------------------------------------------------
# "partition": one model per partition predicts and learns its events. "central": scorers on every
# partition predict with a replica of one model; labelled examples go, in order, to one learner (on the
# worker that owns EXAMPLES_TOPIC's only partition), which publishes snapshots of its model.
LEARNING_MODE = _env("LEARNING_MODE", "central")
EXAMPLES_TOPIC = _env("EXAMPLES_TOPIC", "examples")  # one partition: the learner's order
SNAPSHOTS_TOPIC = _env("SNAPSHOTS_TOPIC", "model-snapshots")  # compacted, one partition, signed snapshots
# Whether this worker can be the learner (it subscribes to EXAMPLES_TOPIC). false: it only scores; the
# learner then runs in workers of their own (another APP_ID, FRAUD_AGENTS empty: see docs/scaleout.md).
CENTRAL_LEARNER = _env("CENTRAL_LEARNER", True)
SNAPSHOT_EVERY = _env("SNAPSHOT_EVERY", 100)  # the learner writes a snapshot every this many examples received...
SNAPSHOT_EVERY_S = _env("SNAPSHOT_EVERY_S", 1.0)  # ...or once this long has passed with something learned
# The staleness bound: a scorer holds its next batch while the newest snapshot lags the examples its
# worker sent by more than STALENESS_MAX_EXAMPLES (0: no bound), at most STALENESS_MAX_WAIT_S per batch
# (then it scores with the snapshot it has: a learner that is down slows the scoring, never stops it).
STALENESS_MAX_EXAMPLES = _env("STALENESS_MAX_EXAMPLES", 200)
STALENESS_MAX_WAIT_S = _env("STALENESS_MAX_WAIT_S", 5.0)
# Event-time alignment (docs/scaleout.md): a worker holds the transactions it takes and scores them
# oldest first, none more than ALIGN_MAX_SKEW_S seconds of event time ahead of its slowest partition
# that can move (one with more to read that gave an event in the last ALIGN_IDLE_S seconds of taking
# events) and, in central learning, of the other workers' partitions as the newest snapshot places
# them; it pauses the fetching of the partitions that run ahead, checking every ALIGN_CHECK_S
# seconds. Needs MODEL_PROCESS (without it the default is 0). 0: no alignment.
ALIGN_MAX_SKEW_S = _env("ALIGN_MAX_SKEW_S", 300.0 if MODEL_PROCESS else 0.0)
ALIGN_IDLE_S = _env("ALIGN_IDLE_S", 5.0)
ALIGN_CHECK_S = _env("ALIGN_CHECK_S", 0.05)
# The share of genuine (label 0) examples the model learns (every fraud is learned), chosen by a hash
# of the transaction id; scorers correct the probabilities for it. 1.0: learn every example. Central:
# the learner's (default 0.1); partition: each partition's model's (default 1.0, the plain loop's).
LEARN_SAMPLE_RATE = _env("LEARN_SAMPLE_RATE", 0.1 if LEARNING_MODE == "central" else 1.0)

# --- windows and anomaly detection -----------------------------------------------------------------
# The model's window features (app.features, the Handbook's baseline): per card, transactions and mean
# amount over CARD_WINDOW_DAYS ending at the transaction; per terminal, from the labels received,
# transactions and fraud ratio over TERMINAL_WINDOW_DAYS ending TERMINAL_DELAY_S before it; weekend and
# night flags (UTC). Each on the ids a transaction carries: one with neither a card nor a terminal id
# (the ULB file's) keeps its raw input. Hopping windows as sums of panes CARD_PANE_S / TERMINAL_PANE_S
# wide (each window a whole number of panes).
WINDOW_FEATURES = _env("WINDOW_FEATURES", True)  # the scorer and the Spark jobs add them to the model input
CARD_WINDOW_DAYS = _env("CARD_WINDOW_DAYS", [1, 7, 30])
TERMINAL_WINDOW_DAYS = _env("TERMINAL_WINDOW_DAYS", [1, 7, 30])
TERMINAL_DELAY_S = _env("TERMINAL_DELAY_S", 604_800)
CARD_PANE_S = _env("CARD_PANE_S", 3_600)
TERMINAL_PANE_S = _env("TERMINAL_PANE_S", 86_400)
# With the card windows, also the transaction's amount over the card's mean amount in each of them
# (CUSTOMER_ID_AMOUNT_OVER_AVG_<k>DAY_WINDOW, app/features/card.py: not among the Handbook's features; read
# from the same panes, no new state): 0.035 more average precision on the Handbook's simulator, small
# configuration (docs/performance.md). A warm-start model is only served the features it learned.
CARD_AMOUNT_RATIOS = _env("CARD_AMOUNT_RATIOS", True)
# Where the worker keeps them (app/scoring/windows.py): card windows in a table partitioned like the
# transactions (a card's transactions share a key: docs/architecture.md, "Keys"); terminal windows in a
# table written from the labels the scorer learns, which go through TERMINAL_LABELS_TOPIC keyed by
# terminal id (empty: <APP_ID>-terminal-labels, created by the worker), and read whole by every worker.
CARD_WINDOWS_TABLE = _env("CARD_WINDOWS_TABLE", "card-windows")
TERMINAL_WINDOWS_TABLE = _env("TERMINAL_WINDOWS_TABLE", "terminal-windows")
TERMINAL_LABELS_TOPIC = _env("TERMINAL_LABELS_TOPIC", "")
# Anomaly agent: MinMaxScaler | HalfSpaceTrees, score then learn per event.
ANOMALY_TREES = _env("ANOMALY_TREES", 10)
ANOMALY_HEIGHT = _env("ANOMALY_HEIGHT", 8)  # height 15 builds ~520 MB and takes ~12 s on its first event
ANOMALY_WINDOW = _env("ANOMALY_WINDOW", 250)  # HST reference window (events)
ANOMALY_THRESHOLD_KIND = _env("ANOMALY_THRESHOLD_KIND", "quantile")  # "fixed" or "quantile"
ANOMALY_THRESHOLD = _env("ANOMALY_THRESHOLD", 0.8)  # the fixed threshold (scores are in [0, 1])
ANOMALY_QUANTILE = _env("ANOMALY_QUANTILE", 0.995)  # flag scores above this rolling quantile...
ANOMALY_QUANTILE_WINDOW = _env("ANOMALY_QUANTILE_WINDOW", 10_000)  # ...of this many recent scores
ANOMALY_WARMUP = _env("ANOMALY_WARMUP", 1000)  # events learned before anything is flagged
# The detector also sees the scorer's window features (app/features), its card windows in a table of its
# own, the terminal windows those the scorer's labels feed (with WINDOW_FEATURES).
ANOMALY_WINDOW_FEATURES = _env("ANOMALY_WINDOW_FEATURES", False)
ANOMALY_CARD_WINDOWS_TABLE = _env("ANOMALY_CARD_WINDOWS_TABLE", "anomaly-card-windows")
ANOMALY_CHECKPOINT_TABLE = _env("ANOMALY_CHECKPOINT_TABLE", "anomaly-checkpoints")  # detector per partition
ANOMALY_CHECKPOINT_EVERY_EVENTS = _env("ANOMALY_CHECKPOINT_EVERY_EVENTS", 10_000)  # and on revocation and shutdown

# --- drift monitoring ------------------------------------------------------------------------------
DRIFT_DELTA = _env("DRIFT_DELTA", 0.002)  # ADWIN's significance: smaller = fewer false alarms, later alarms
DRIFT_CLOCK = _env("DRIFT_CLOCK", 32)  # ADWIN checks for a cut every this many values
# Transaction fields monitored for input drift: Amount and the three largest PCA components (their spread)
DRIFT_FEATURES = _env("DRIFT_FEATURES", ["Amount", "V1", "V2", "V3"])
DRIFT_FEATURE_TRANSFORM = _env("DRIFT_FEATURE_TRANSFORM", "log1p_abs")  # log1p_abs | log1p | identity | clip:<lo>:<hi>
DRIFT_MONITOR_SCORES = _env("DRIFT_MONITOR_SCORES", True)  # fraud_probability and error streams of `scores`
DRIFT_SCORE_DIRECTION = _env("DRIFT_SCORE_DIRECTION", "increase")  # a learning model's scores fall: alert on rises
DRIFT_ERROR_DIRECTION = _env("DRIFT_ERROR_DIRECTION", "increase")  # alert on error increases only (or "both")
# Labelled events a model learns before its score and error streams are watched (a learning model moves them)
DRIFT_SETTLE_EVENTS = _env("DRIFT_SETTLE_EVENTS", 10_000)
DRIFT_MITIGATION = _env("DRIFT_MITIGATION", "none")  # none | reset | challenger
DRIFT_MITIGATE_ON = _env("DRIFT_MITIGATE_ON", ["error"])  # streams whose alerts trigger the mitigation
DRIFT_WARNING_DELTA = _env("DRIFT_WARNING_DELTA", 0.1)  # the warning ADWIN (challenger start), larger = earlier
DRIFT_CHALLENGER_MIN_EVENTS = _env("DRIFT_CHALLENGER_MIN_EVENTS", 200)  # younger challenger: reset instead
DRIFT_CHALLENGER_MAX_AGE = _env("DRIFT_CHALLENGER_MAX_AGE", 20000)  # an older unpromoted one restarts on warning
DRIFT_CHALLENGER_CHECKPOINT_EVERY = _env("DRIFT_CHALLENGER_CHECKPOINT_EVERY", 2000)  # events a running one learns
DRIFT_CHECKPOINT_TABLE = _env("DRIFT_CHECKPOINT_TABLE", "drift-checkpoints")  # the ADWIN windows per partition
DRIFT_CHECKPOINT_EVERY_VALUES = _env("DRIFT_CHECKPOINT_EVERY_VALUES", 40_000)  # values into a partition's monitor

# --- spark backfill --------------------------------------------------------------------------------
# Spark batch jobs (app/backfill): `python -m app.backfill features|scores|warm-start`.
SPARK_MASTER = _env("SPARK_MASTER", "local[*]")  # or spark://host:7077 (a standalone cluster)
SPARK_DRIVER_MEMORY = _env("SPARK_DRIVER_MEMORY", "2g")
SPARK_LOCAL_IP = _env("SPARK_LOCAL_IP", "127.0.0.1")  # the address Spark binds to on this machine
SPARK_SHUFFLE_PARTITIONS = _env("SPARK_SHUFFLE_PARTITIONS", 8)  # Spark's default 200 is for clusters
SPARK_ARROW_BATCH_ROWS = _env("SPARK_ARROW_BATCH_ROWS", 10_000)  # rows per pandas batch (mapInPandas)
SPARK_JARS_DIR = _env("SPARK_JARS_DIR", "")  # Kafka/Avro connector jars; empty = .stack/dist/spark-jars-<version>
BACKFILL_FEATURES_TOPIC = _env("BACKFILL_FEATURES_TOPIC", "window-features")  # features --publish target

# --- observability ---------------------------------------------------------------------------------
# /metrics is served on WEB_HOST:WEB_PORT (use WEB_HOST=0.0.0.0 in a container so Prometheus can scrape it).
CONSUMER_LAG_INTERVAL_S = _env("CONSUMER_LAG_INTERVAL_S", 5.0)  # how often fraud_consumer_lag is refreshed
# How often fraud_committed_offset is refreshed and the partitions whose committed offset moved are logged.
COMMIT_PROGRESS_INTERVAL_S = _env("COMMIT_PROGRESS_INTERVAL_S", 10.0)
FAUST_SENSOR = _env("FAUST_SENSOR", True)  # also export Faust's own sensor (fraud_faust_*) on /metrics
REPORT_WINDOW_S = _env("REPORT_WINDOW_S", 0.0)  # run report: event-time window; 0 = about 40 over the run
REPORT_AUC_WINDOW = _env("REPORT_AUC_WINDOW", 5000)  # run report: labelled events in the rolling AUC window

# --- security (empty = off); secrets come from the environment, never from the repository ------------
KAFKA_SECURITY_PROTOCOL = _env("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")  # PLAINTEXT|SSL|SASL_PLAINTEXT|SASL_SSL
KAFKA_SASL_MECHANISM = _env("KAFKA_SASL_MECHANISM", "PLAIN")  # PLAIN|SCRAM-SHA-256|SCRAM-SHA-512
KAFKA_SASL_USERNAME = _env("KAFKA_SASL_USERNAME", "")
KAFKA_SASL_PASSWORD = _env("KAFKA_SASL_PASSWORD", "")
KAFKA_SSL_CAFILE = _env("KAFKA_SSL_CAFILE", "")
KAFKA_SSL_CERTFILE = _env("KAFKA_SSL_CERTFILE", "")
KAFKA_SSL_KEYFILE = _env("KAFKA_SSL_KEYFILE", "")
SCHEMA_REGISTRY_USER = _env("SCHEMA_REGISTRY_USER", "")
SCHEMA_REGISTRY_PASSWORD = _env("SCHEMA_REGISTRY_PASSWORD", "")
REGISTRY_WAIT_S = _env("REGISTRY_WAIT_S", 120.0)  # at start, wait this long for the registry (with backoff)
BROKER_WAIT_S = _env("BROKER_WAIT_S", 120.0)  # and this long for Kafka
# The secret that signs the state checkpoints (models, detectors, drift monitors) written to the changelog
# topics; a checkpoint it does not verify is refused, never unpickled. The same for every worker of an app,
# at least 16 bytes. Unset: a public development key, with a warning at start (it stops only unsigned blobs).
STATE_KEY = _env("STATE_KEY", "")
