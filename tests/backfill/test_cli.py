"""The command line: jobs, defaults from settings, refusals before any JVM starts."""
from __future__ import annotations

import pytest

import settings
from app.backfill.__main__ import _parser, main


def test_defaults_come_from_settings():
    args = _parser().parse_args(["features", "--output", "out", "--publish"])
    assert args.master == settings.SPARK_MASTER and args.source == "kafka"
    assert args.topic == settings.TRANSACTIONS_TOPIC and args.publish == settings.BACKFILL_FEATURES_TOPIC
    args = _parser().parse_args(["warm-start", "--output", "w.ckpt", "--no-window-features", "--model-kind", "lr"])
    assert args.window_features is False and args.model_kind == "lr"


def test_every_job_takes_the_label_delay_and_no_window_shape(capsys):
    for job in (["features", "--output", "o"], ["scores", "--checkpoint", "c", "--output", "o"],
                ["warm-start", "--output", "w.ckpt"]):
        assert _parser().parse_args(job).label_delay_s == 7 * 86_400
        assert _parser().parse_args([*job, "--label-delay-s", "3600"]).label_delay_s == 3600.0
    for gone in (["--order", "arrival"], ["--size", "60"], ["--step", "20"], ["--expires", "300"]):
        with pytest.raises(SystemExit):  # the windows are the settings' and the order is event time
            _parser().parse_args(["features", "--output", "o", *gone])
    assert "unrecognized arguments: --order" in capsys.readouterr().err


def test_features_without_any_output_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["features", "--source", "ulb"])
    assert exit_.value.code == 2 and "--output" in capsys.readouterr().err


def test_scores_need_a_checkpoint():
    with pytest.raises(SystemExit):
        _parser().parse_args(["scores", "--output", "out"])
