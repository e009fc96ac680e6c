"""``status``: each worker's /model as a table or JSON; an unreachable worker is shown and fails the command."""
from __future__ import annotations

import json

import httpx
import pytest
from click.testing import CliRunner

from app.cli import main
from app.cli import status as status_module
from tests.cli.fakes import FakeCluster, context

MODEL = {"partitions": {
    "1": {"version": "arf+lr-g0", "events_learned": 300, "last_checkpoint": None, "prequential": None},
    "0": {"version": "arf+lr-g2", "events_learned": 5000, "last_checkpoint": 1_700_000_000.0,
          "prequential": {"cumulative": {"pr_auc": 0.7512, "roc_auc": 0.95}}},
}}


@pytest.fixture
def asked(monkeypatch):
    """Workers at http://a:1 (answers MODEL) and http://down:1 (refuses connections); the URLs asked."""
    urls = []

    def get(url, timeout):
        urls.append(url)
        if url.startswith("http://down"):
            raise httpx.ConnectError("connection refused")
        return httpx.Response(200, json=MODEL, request=httpx.Request("GET", url))

    monkeypatch.setattr(status_module.httpx, "get", get)
    return urls


def test_a_table_by_partition(asked):
    result = CliRunner().invoke(main, ["status", "--worker", "http://a:1"], obj=context(FakeCluster()))
    assert result.exit_code == 0, result.output
    header, first, second = result.output.splitlines()
    assert header.split("  ")[0] == "partition" and "PR-AUC" in header
    assert first.split() == ["0", "http://a:1", "arf+lr-g2", "5000", "2023-11-14", "22:13:20Z", "0.751"]
    assert second.split() == ["1", "http://a:1", "arf+lr-g0", "300", "never", "-"]
    assert asked == ["http://a:1/model"]


def test_default_worker_json_and_an_unreachable_one(asked):
    result = CliRunner().invoke(main, ["status"], obj=context(FakeCluster(), web_url="http://a:1"))
    assert result.exit_code == 0 and asked == ["http://a:1/model"]
    result = CliRunner().invoke(main, ["status", "--json", "-w", "http://a:1", "-w", "http://down:1"],
                                obj=context(FakeCluster()))
    assert result.exit_code == 1
    answers = json.loads(result.output)["workers"]
    assert answers["http://a:1"] == MODEL and "connection refused" in answers["http://down:1"]["error"]
    result = CliRunner().invoke(main, ["status", "-w", "http://down:1"], obj=context(FakeCluster()))
    assert result.exit_code == 1 and "unreachable: ConnectError: connection refused" in result.output
