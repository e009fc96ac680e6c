"""Prometheus metrics of the worker, served at ``/metrics`` on its web port.

All metrics live in :data:`REGISTRY` (not the process-global one), so tests can read them and
several apps in one process do not collide. Every name starts with ``fraud_``.
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# --- flow ----------------------------------------------------------------------------------------
EVENTS_IN = Counter("fraud_events_in_total", "Messages consumed, per topic.", ["topic"], registry=REGISTRY)
EVENTS_OUT = Counter("fraud_events_out_total", "Messages produced, per topic.", ["topic"], registry=REGISTRY)
AGENT_EVENTS = Counter(
    "fraud_agent_events_total", "Events each agent is done with (its outputs confirmed by the broker), per agent: "
    "scoring, anomaly, drift-transactions, drift-scores.", ["agent"], registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    "fraud_dead_letters_total", "Input messages sent to the dead-letter topic, per source topic and reason.",
    ["topic", "reason"], registry=REGISTRY,
)
CONSUMER_LAG = Gauge("fraud_consumer_lag", "Messages behind the end of the partition.", ["topic", "partition"],
                     registry=REGISTRY)
COMMITTED_OFFSET = Gauge("fraud_committed_offset", "The consumer group's committed offset (the next to read) of "
                         "each source partition of this worker.", ["topic", "partition"], registry=REGISTRY)

# --- latency -------------------------------------------------------------------------------------
SCORE_LATENCY = Histogram(
    "fraud_consume_to_produce_seconds",
    "From taking a transaction off the stream to handing its score to the producer.",
    buckets=_LATENCY_BUCKETS, registry=REGISTRY,
)
EVENT_TO_SCORE_LATENCY = Histogram(
    "fraud_event_to_score_seconds", "From the transaction's event time to its score (live streams only).",
    buckets=_LATENCY_BUCKETS, registry=REGISTRY,
)

# --- scoring -------------------------------------------------------------------------------------
FRAUD_SCORE = Histogram(
    "fraud_score", "Fraud probabilities given.", buckets=(0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.99),
    registry=REGISTRY,
)
DECISIONS = Counter("fraud_decisions_total", "Scores by decision at the threshold.", ["decision"], registry=REGISTRY)
LABELS = Counter(
    "fraud_labels_total", "Labels by outcome: learned, parked (before their transaction), unknown, expired, "
    "duplicate.",
    ["outcome"], registry=REGISTRY,
)
_DAY = 86_400.0
LABEL_DELAY = Histogram(
    "fraud_label_delay_seconds", "Event time from a transaction to the newest transaction of its partition when "
    "its label is learned: how late the model learns each label.",
    buckets=(60.0, 3600.0, 6 * 3600.0, _DAY, 2 * _DAY, 3 * _DAY, 5 * _DAY, 7 * _DAY, 7.25 * _DAY, 7.5 * _DAY,
             8 * _DAY, 10 * _DAY, 14 * _DAY, 30 * _DAY, 60 * _DAY), registry=REGISTRY,
)
LABEL_WAITS = Counter(
    "fraud_label_waits_total", "Labels that waited for their transaction, by how the wait ended "
    "(found, passed: the partition moved past its event time, ahead: far ahead of it, idle, timeout).", ["outcome"], registry=REGISTRY)
LABELS_PENDING = Gauge("fraud_labels_pending", "Transactions waiting for their label.", ["partition"], registry=REGISTRY)
LABELS_PARKED = Counter(
    "fraud_parked_labels_total", "Labels that came before their transaction, by event: parked, learned (when "
    "their transaction was scored), expired (their transaction never came).", ["event"], registry=REGISTRY)
LABELS_PARKED_NOW = Gauge("fraud_labels_parked", "Labels parked until their transaction comes.", ["partition"],
                          registry=REGISTRY)
EVENTS_LEARNED = Gauge("fraud_model_events_learned", "Labelled events the model has learned.", ["partition"],
                       registry=REGISTRY)
MODEL_VERSION = Gauge("fraud_model_version_info", "The model version in use (value 1).", ["partition", "version"],
                      registry=REGISTRY)
PREQUENTIAL = Gauge("fraud_prequential_metric", "Prequential metrics of the scorer (ROC-AUC, PR-AUC, ...: exact over "
                    "the window, binned with an error bound cumulatively).",
                    ["partition", "metric", "window"], registry=REGISTRY)
CHECKPOINTS = Counter("fraud_checkpoints_total", "Model checkpoints written.", ["partition"], registry=REGISTRY)
CHECKPOINT_SECONDS = Histogram("fraud_checkpoint_seconds", "From asking the model host for a checkpoint to having it.",
                               buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5), registry=REGISTRY)
CAUGHT_UP = Counter("fraud_caught_up_events_total",
                    "Events read back from Kafka to catch a partition's restored state up: committed after its "
                    "last checkpoint, before a crash.", ["state", "topic", "partition"], registry=REGISTRY)
READ_BACK_SHORT = Counter("fraud_read_back_short_total",
                          "Catch-up reads back from Kafka that stopped short of the offset they aimed for (a "
                          "deleted or compacted stretch, an idle timeout): the state went on without the rest.",
                          ["topic", "partition"], registry=REGISTRY)
STATE_REJECTED = Counter("fraud_state_rejected_total",
                         "Stored state refused when read back (the partition starts without it), per kind of "
                         "state and reason: unsigned, other_key, bad_signature (not signed with this worker's "
                         "key), format (pending features not in the current format).",
                         ["state", "reason"], registry=REGISTRY)
CHECKPOINT_BYTES = Gauge("fraud_checkpoint_bytes", "Size of the partition's last model checkpoint.", ["partition"],
                         registry=REGISTRY)

# --- central learning (LEARNING_MODE=central) -----------------------------------------------------
LEARNER_EXAMPLES = Counter("fraud_learner_examples_total",
                           "Examples the central learner read, by what it did with them: learn (predicted, then "
                           "learned), duplicate (a source position already taken in), subsampled (a genuine "
                           "example negative subsampling leaves out), unreadable (not an example), failed (the model "
                           "host refused it).", ["decision"], registry=REGISTRY)
LEARNER_RECEIVED = Gauge("fraud_learner_examples_received",
                         "Examples the central model has taken in (learned or subsampled): its version's count.",
                         registry=REGISTRY)
LEARNER_LAG = Gauge("fraud_learner_lag", "Examples between the last one the central learner took in and the end "
                    "of the examples topic, as of its last batch.", registry=REGISTRY)
SNAPSHOTS = Counter("fraud_snapshots_total", "Model snapshots the central learner wrote (confirmed by the broker).",
                    registry=REGISTRY)
SNAPSHOT_SECONDS = Histogram("fraud_snapshot_seconds", "From asking the model host for the central model's "
                             "checkpoint to the broker's confirmation of its snapshot.",
                             buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5), registry=REGISTRY)
SNAPSHOT_BYTES = Gauge("fraud_snapshot_bytes", "Size of the last model snapshot written.", registry=REGISTRY)
REPLICA_LAG = Gauge("fraud_replica_lag", "Examples this worker sent that the newest model snapshot had not taken in, "
                    "as of its last batch (central learning's staleness bound: STALENESS_MAX_EXAMPLES).",
                    registry=REGISTRY)
STALENESS_HELD = Counter("fraud_staleness_held_seconds_total", "Seconds the scorer held a batch for the learner's "
                         "next snapshot (the staleness bound).", registry=REGISTRY)
STALENESS_TIMEOUTS = Counter("fraud_staleness_timeouts_total", "Batches scored with a snapshot beyond the staleness "
                             "bound after its longest wait (STALENESS_MAX_WAIT_S).", registry=REGISTRY)

PARTITIONS_PAUSED = Gauge("fraud_partitions_paused", "Partitions of transactions this worker has paused for running "
                          "ahead of its slowest in event time (ALIGN_MAX_SKEW_S).", registry=REGISTRY)
EVENTS_HELD = Gauge("fraud_events_held", "Transactions this worker has taken and holds until its slower partitions "
                    "catch up in event time (ALIGN_MAX_SKEW_S).", registry=REGISTRY)
PARTITION_SKEW = Gauge("fraud_partition_skew_seconds", "Event time of this worker's newest partition minus that of its "
                       "slowest that can move, at the alignment's last check (ALIGN_MAX_SKEW_S).", registry=REGISTRY)

# --- window features ------------------------------------------------------------------------------
WINDOW_IDS_MISSING = Counter("fraud_window_features_missing_total",
                             "Transactions scored without a card's or a terminal's window features (the record "
                             "has no such id), per id.", ["id"], registry=REGISTRY)
WINDOW_KEYS = Gauge("fraud_window_keys", "Keys with window state: the cards of each partition of this worker, and "
                    "the terminals of this worker's copy of the terminal table (partition \"all\").",
                    ["table", "partition"], registry=REGISTRY)
WINDOW_KEYS_EXPIRED = Counter("fraud_window_keys_expired_total", "Cards and terminals deleted from their table "
                              "once all their windows were past.", ["table"], registry=REGISTRY)
TABLE_VIEW_READ_TO = Gauge("fraud_table_view_read_to", "The offsets this worker's copy of a table read whole "
                          "(the terminal windows) has read its changelog up to, summed over the changelog's "
                          "partitions: the copy holds every record written once it reaches the sum of the "
                          "changelog's end offsets.", ["table"], registry=REGISTRY)
TERMINAL_LABELS = Counter("fraud_terminal_labels_total", "Labels applied to their terminal's windows (applied), "
                          "or received again and left out (duplicate).", ["outcome"], registry=REGISTRY)

# --- anomaly and drift ---------------------------------------------------------------------------
ANOMALIES = Counter("fraud_anomalies_total", "Transactions flagged as anomalies.", registry=REGISTRY)
ANOMALY_SCORE = Histogram("fraud_anomaly_score", "Anomaly scores given.",
                          buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95), registry=REGISTRY)
ANOMALY_EVENTS_SEEN = Gauge("fraud_anomaly_events_seen", "Events the partition's anomaly detector has learned.",
                            ["partition"], registry=REGISTRY)
ANOMALY_CHECKPOINTS = Counter("fraud_anomaly_checkpoints_total", "Anomaly detector checkpoints written.",
                              ["partition"], registry=REGISTRY)
DRIFT_CHECKPOINTS = Counter("fraud_drift_checkpoints_total", "Drift monitor and challenger checkpoints written.",
                            ["monitor", "partition"], registry=REGISTRY)
DRIFT_CHALLENGER_EVENTS = Gauge("fraud_drift_challenger_events",
                                "Labelled events the partition's running drift challenger has learned (0: none runs).",
                                ["partition"], registry=REGISTRY)
DRIFT_ALERTS = Counter("fraud_drift_alerts_total", "Drift alerts published, per monitored stream.", ["stream"],
                       registry=REGISTRY)


def render() -> bytes:
    """The metrics in Prometheus's text format."""
    return generate_latest(REGISTRY)
