"""The run report from frames, from Parquet and through the command line."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from app.report import RunFrames, write_report
from app.report.__main__ import main
from app.report.frames import from_parquet

PNGS = ("prequential_auc.png", "latency.png", "anomalies.png", "timeline.png")


def make_run(n: int = 3000, seed: int = 0) -> tuple[RunFrames, dict]:
    """Scores of a model that is informative, half of the labels late, a few anomalies and one alert."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.05).astype(int)
    p = np.clip(0.15 + 0.5 * y + rng.normal(0, 0.15, n), 0, 1)
    t = 1_700_000_000.0 + np.arange(n) * 0.5
    latency = rng.gamma(2.0, 0.01, n)
    late = rng.random(n) < 0.5
    scores = [{"transaction_id": f"tx-{i}", "event_time": t[i], "processing_time": t[i] + latency[i],
               "fraud_probability": p[i], "decision": bool(p[i] >= 0.5), "label": None if late[i] else int(y[i]),
               "model_version": "arf-1", "partition": 0, "offset": i} for i in range(n)]
    scores.append(dict(scores[10]))  # an at-least-once duplicate
    labels = [{"transaction_id": f"tx-{i}", "label": int(y[i])} for i in range(n) if late[i]]
    anomalies = [{"transaction_id": f"tx-{i}", "event_time": t[i], "score": 0.9, "threshold": 0.8,
                  "processing_time": t[i] + 0.01} for i in range(0, n, 97)]
    drift = [{"event_time": t[n // 2], "stream": "feature:Amount", "detector": "ADWIN(delta=0.002)",
              "position": n // 2, "mean_before": 1.0, "mean_after": 2.0, "mitigation": "none",
              "model_version": "arf-1", "processing_time": t[n // 2] + 0.1}]
    expected = {"roc_auc": roc_auc_score(y, p), "pr_auc": average_precision_score(y, p), "frauds": int(y.sum()),
                "anomalies": len(anomalies), "latency_p99": float(np.percentile(latency, 99))}
    return RunFrames.from_records(scores, labels, anomalies, drift), expected


def assert_png(path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, path


def test_report_writes_every_plot_and_a_summary_with_exact_figures(tmp_path):
    run, expected = make_run()
    figures = write_report(run, tmp_path, auc_window=1000)
    for name in PNGS:
        assert_png(tmp_path / name)
    assert figures["scored"] == 3000 and figures["duplicates"] == 1
    assert figures["labelled"] == 3000 and figures["frauds"] == expected["frauds"]  # late labels joined
    assert figures["roc_auc"] == pytest.approx(expected["roc_auc"], abs=1e-12)
    assert figures["pr_auc"] == pytest.approx(expected["pr_auc"], abs=1e-12)
    assert figures["latency_s"]["p99"] == pytest.approx(expected["latency_p99"], abs=1e-6)  # epoch-second floats
    assert figures["anomalies"] == expected["anomalies"] and figures["drift_alerts"] == 1
    summary = (tmp_path / "summary.md").read_text()
    assert f"ROC-AUC (exact): {expected['roc_auc']:.3f}" in summary
    assert "| feature:Amount | ADWIN(delta=0.002) |" in summary
    for name in PNGS:
        assert f"({name})" in summary


def test_scores_without_any_label_still_give_latency_and_anomaly_plots(tmp_path):
    run, _ = make_run(500)
    run.scores["label"] = None
    run.labels = run.labels.iloc[0:0]
    figures = write_report(run, tmp_path)
    assert figures["labelled"] == 0 and np.isnan(figures["roc_auc"])
    assert "ROC-AUC (exact): n/a" in (tmp_path / "summary.md").read_text()
    for name in PNGS:
        assert (tmp_path / name).exists()


def test_no_scores_is_an_error(tmp_path):
    with pytest.raises(ValueError):
        write_report(RunFrames.from_records([]), tmp_path)


def test_command_line_reads_parquet(tmp_path, capsys):
    run, expected = make_run(1500, seed=1)
    src = tmp_path / "run"
    src.mkdir()
    run.scores.to_parquet(src / "scores.parquet")
    run.labels.to_parquet(src / "labels.parquet")
    run.anomalies.to_parquet(src / "anomalies.parquet")
    (src / "drift_alerts").mkdir()  # a folder of part files, as Spark writes it
    run.drift_alerts.to_parquet(src / "drift_alerts" / "part-0000.parquet")
    assert from_parquet(src).drift_alerts["stream"].tolist() == ["feature:Amount"]

    out = tmp_path / "report"
    assert main(["--parquet", str(src), "--out", str(out), "--window-s", "60"]) == 0
    assert f"ROC-AUC {expected['roc_auc']:.3f}" in capsys.readouterr().out
    for name in PNGS:
        assert_png(out / name)
    assert "in 60 s windows" in (out / "summary.md").read_text()


def test_parquet_without_scores_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="scores"):
        from_parquet(tmp_path)
