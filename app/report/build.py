"""Turn a run's frames into the report folder: PNG plots and ``summary.md``."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from app.report import plots
from app.report.frames import RunFrames
from app.report.measures import exact_aucs, latency_by_window, overall_latency, per_window_counts, prequential_auc


def default_window_s(span_s: float, windows: int = 40) -> float:
    """A round window length giving about ``windows`` windows over ``span_s`` seconds.

    >>> default_window_s(1000.0), default_window_s(172800.0), default_window_s(0.0)
    (25.0, 5000.0, 1.0)
    """
    target = max(span_s / windows, 1.0)
    scale = 1.0
    while True:
        for base in (1.0, 2.0, 2.5, 5.0):
            if base * scale >= target:
                return base * scale
        scale *= 10.0


def _fmt(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def write_report(run: RunFrames, out: str | Path, window_s: float | None = None, auc_window: int = 5000,
                 points: int = 60, title: str = "Run report") -> dict:
    """Write the plots and ``summary.md`` into ``out``; return the summary's figures."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    scores = run.with_labels()
    if scores.empty:
        raise ValueError("no scores to report on")
    labelled = run.labelled()
    origin = float(scores["event_time"].min())
    span_s = float(scores["event_time"].max()) - origin
    window_s = window_s or default_window_s(span_s)
    drift = run.drift_alerts

    auc = prequential_auc(labelled, points=points, window=auc_window)
    latency = latency_by_window(scores, origin, window_s)
    anomalies = per_window_counts(run.anomalies["event_time"], origin, window_s, span_s)
    scored = per_window_counts(scores["event_time"], origin, window_s, span_s)
    frauds = per_window_counts(labelled.loc[labelled["label"] == 1, "event_time"], origin, window_s, span_s)

    files = [
        plots.plot_prequential(auc, drift, origin, auc_window, out / "prequential_auc.png"),
        plots.plot_latency(latency, drift, origin, out / "latency.png"),
        plots.plot_anomalies(anomalies, scored, drift, origin, window_s, out / "anomalies.png"),
        plots.plot_timeline(auc, latency, anomalies, frauds, drift, origin, window_s, out / "timeline.png"),
    ]
    roc, pr = exact_aucs(labelled["label"].to_numpy(dtype=int), labelled["fraud_probability"].to_numpy(dtype=float))
    lat = overall_latency(scores)
    figures = {
        "scored": int(len(scores)), "duplicates": int(len(run.scores) - len(scores)), "labelled": int(len(labelled)),
        "frauds": int(labelled["label"].sum()) if len(labelled) else 0, "roc_auc": roc, "pr_auc": pr,
        "latency_s": lat, "ahead": float((scores["processing_time"] < scores["event_time"]).mean()),
        "anomalies": int(len(run.anomalies)), "drift_alerts": int(len(drift)),
        "span_s": span_s, "window_s": window_s, "model_versions": sorted(map(str, scores["model_version"].dropna().unique())),
        "files": [str(f) for f in files],
    }
    (out / "summary.md").write_text(_summary(title, figures, drift, origin))
    return figures


def _summary(title: str, f: dict, drift: pd.DataFrame, origin: float) -> str:
    lat = f["latency_s"]
    lines = [
        f"# {title}", "",
        f"- transactions scored: {f['scored']}" + (f" ({f['duplicates']} duplicate scores ignored)" if f["duplicates"] else ""),
        f"- labelled: {f['labelled']}, of which fraud: {f['frauds']}",
        f"- prequential ROC-AUC (exact): {_fmt(f['roc_auc'])}, PR-AUC (average precision): {_fmt(f['pr_auc'])}",
        f"- latency, processing time - event time: p50 {_fmt(lat['p50'] * 1000, 1)} ms, p95 "
        f"{_fmt(lat['p95'] * 1000, 1)} ms, p99 {_fmt(lat['p99'] * 1000, 1)} ms, max {_fmt(lat['max'] * 1000, 1)} ms",
        *([f"- note: {f['ahead']:.0%} of the event times are later than their processing time (a replay "
            "faster than its data's clock): the latency figures are not end-to-end latencies"] if f["ahead"] > 0.01 else []),
        f"- anomalies: {f['anomalies']}",
        f"- drift alerts: {f['drift_alerts']}",
        f"- event-time span: {f['span_s']:.0f} s, in {f['window_s']:g} s windows",
        f"- model versions: {', '.join(f['model_versions']) or 'n/a'}",
        "",
    ]
    if len(drift):
        lines += ["## Drift alerts", "", "| event time (s) | stream | detector | mean before | mean after | mitigation |",
                  "|---:|---|---|---:|---:|---|"]
        for _, a in drift.sort_values("event_time").iterrows():
            lines.append(f"| {float(a['event_time']) - origin:.1f} | {a['stream']} | {a['detector']} | "
                         f"{_fmt(float(a['mean_before']))} | {_fmt(float(a['mean_after']))} | {a['mitigation']} |")
        lines.append("")
    lines += ["## Plots", ""] + [f"![{Path(p).stem}]({Path(p).name})" for p in f["files"]] + [""]
    return "\n".join(lines)
