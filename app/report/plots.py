"""The report's figures, drawn with matplotlib's Agg backend (no display needed)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

DPI = 110


def _mark_drift(ax, drift_alerts: pd.DataFrame, origin: float, label: bool = True) -> None:
    """A dashed red line per drift alert, at its event time."""
    for i, (_, alert) in enumerate(drift_alerts.sort_values("event_time").iterrows()):
        ax.axvline(float(alert["event_time"]) - origin, color="tab:red", linestyle="--", linewidth=1, alpha=0.8,
                   label="drift alert" if label and i == 0 else None)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def plot_prequential(auc: pd.DataFrame, drift_alerts: pd.DataFrame, origin: float, window: int, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(9, 4.2))
    x = auc["event_time"] - origin
    ax.plot(x, auc["roc_auc"], color="tab:blue", label="ROC-AUC (cumulative)")
    ax.plot(x, auc["roc_auc_window"], color="tab:blue", alpha=0.45, linestyle=":", label=f"ROC-AUC (last {window})")
    ax.plot(x, auc["pr_auc"], color="tab:orange", label="PR-AUC (cumulative)")
    ax.plot(x, auc["pr_auc_window"], color="tab:orange", alpha=0.45, linestyle=":", label=f"PR-AUC (last {window})")
    _mark_drift(ax, drift_alerts, origin)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("event time (s from the first transaction)")
    ax.set_ylabel("exact AUC")
    ax.set_title("Prequential ROC-AUC and PR-AUC (predict, then learn)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8, ncol=2)
    return _save(fig, path)


def plot_latency(latency: pd.DataFrame, drift_alerts: pd.DataFrame, origin: float, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(9, 4.2))
    for column, color in zip([c for c in latency.columns if c.startswith("p")], ["tab:green", "tab:olive", "tab:red"]):
        ax.plot(latency.index, latency[column] * 1000.0, marker=".", color=color, label=column)
    _mark_drift(ax, drift_alerts, origin)
    ax.set_xlabel("event time window (s from the first transaction)")
    ax.set_ylabel("processing time - event time (ms)")
    ax.set_title("Latency percentiles per window")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_anomalies(anomalies: pd.Series, scored: pd.Series, drift_alerts: pd.DataFrame, origin: float,
                   window_s: float, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(9, 4.2))
    ax.bar(anomalies.index, anomalies.values, width=window_s * 0.9, align="edge", color="tab:purple",
           label="anomalies")
    ax2 = ax.twinx()
    ax2.plot(scored.index + window_s / 2, scored.values, color="grey", alpha=0.6, label="transactions scored")
    ax2.set_ylabel("transactions per window", color="grey")
    _mark_drift(ax, drift_alerts, origin)
    ax.set_xlabel(f"event time (s from the first transaction), {window_s:g} s windows")
    ax.set_ylabel("anomalies per window")
    ax.set_title("Anomalies per window")
    ax.grid(alpha=0.3)
    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(handles=handles, fontsize=8, loc="upper left")
    return _save(fig, path)


def plot_timeline(auc: pd.DataFrame, latency: pd.DataFrame, anomalies: pd.Series, frauds: pd.Series,
                  drift_alerts: pd.DataFrame, origin: float, window_s: float, path: Path) -> Path:
    """The run on one picture: quality, latency, anomalies and labelled frauds, drift alerts marked."""
    fig, axes = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    ax = axes[0]
    x = auc["event_time"] - origin
    ax.plot(x, auc["roc_auc"], color="tab:blue", label="ROC-AUC")
    ax.plot(x, auc["pr_auc"], color="tab:orange", label="PR-AUC")
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("exact AUC\n(prequential)")
    ax = axes[1]
    for column, color in zip([c for c in latency.columns if c.startswith("p")], ["tab:green", "tab:olive", "tab:red"]):
        ax.plot(latency.index + window_s / 2, latency[column] * 1000.0, color=color, label=f"latency {column}")
    ax.set_ylabel("latency (ms)")
    ax = axes[2]
    ax.bar(anomalies.index, anomalies.values, width=window_s * 0.9, align="edge", color="tab:purple",
           alpha=0.8, label="anomalies")
    ax.bar(frauds.index, frauds.values, width=window_s * 0.45, align="edge", color="black", label="labelled frauds")
    ax.set_ylabel(f"per {window_s:g} s")
    ax.set_xlabel("event time (s from the first transaction)")
    for i, ax in enumerate(axes):
        _mark_drift(ax, drift_alerts, origin, label=(i == 0))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right" if i == 0 else "upper right", ncol=3)
    fig.suptitle("Run timeline")
    return _save(fig, path)
