"""``fraudstream status``: what each worker's ``GET /model`` page says, as one table.

>>> rows = table_rows({"http://w1:6066": {"partitions": {"0": {
...     "version": "arf+lr-g0", "events_learned": 1200, "last_checkpoint": 0.0,
...     "prequential": {"cumulative": {"pr_auc": 0.61234}}}}}})
>>> print(render(rows))
partition  worker          version    events learned  last checkpoint       PR-AUC
0          http://w1:6066  arf+lr-g0  1200            1970-01-01 00:00:00Z  0.612
"""
from __future__ import annotations

import datetime
import json

import click
import httpx

COLUMNS = ("partition", "worker", "version", "events learned", "last checkpoint", "PR-AUC")


def fetch(urls: list[str], timeout_s: float) -> dict[str, dict]:
    """Each worker's ``/model`` answer, or ``{"error": ...}`` when it does not give one."""
    out = {}
    for url in urls:
        try:
            response = httpx.get(url.rstrip("/") + "/model", timeout=timeout_s)
            response.raise_for_status()
            out[url] = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            out[url] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


def _when(unix: float | None) -> str:
    if unix is None:
        return "never"
    return datetime.datetime.fromtimestamp(unix, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def table_rows(answers: dict[str, dict]) -> list[tuple[str, ...]]:
    """One row per partition of each worker (one per unreachable worker), by partition."""
    rows = []
    for url, answer in answers.items():
        if "error" in answer:
            rows.append(("-", url, f"unreachable: {answer['error']}", "", "", ""))
            continue
        for partition, model in answer.get("partitions", {}).items():
            pr_auc = ((model.get("prequential") or {}).get("cumulative") or {}).get("pr_auc")
            rows.append((partition, url, str(model.get("version")), str(model.get("events_learned")),
                         _when(model.get("last_checkpoint")), "-" if pr_auc is None else f"{pr_auc:.3f}"))
    return sorted(rows, key=lambda row: (not row[0].isdigit(), int(row[0]) if row[0].isdigit() else 0, row[1]))


def render(rows: list[tuple[str, ...]]) -> str:
    """``rows`` under :data:`COLUMNS`, aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(COLUMNS, *rows)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip()
             for row in (COLUMNS, *rows)]
    return "\n".join(lines)


@click.command(short_help="The workers' models, per partition.")
@click.option("--worker", "-w", "workers", multiple=True, metavar="URL",
              help="A worker's web address (repeatable); default: http://WEB_HOST:WEB_PORT of the settings.")
@click.option("--json", "as_json", is_flag=True, help="Print each worker's /model answer as JSON instead.")
@click.option("--timeout", type=float, default=5.0, show_default=True, help="Seconds to wait for each worker.")
@click.pass_obj
def status(context, workers: tuple[str, ...], as_json: bool, timeout: float) -> None:
    """The models of the workers: per partition, the version, the events learned, the last checkpoint
    the worker wrote and the cumulative prequential PR-AUC (from each worker's GET /model).
    Exits with 1 if a worker does not answer."""
    answers = fetch(list(workers) or [context.web_url], timeout)
    if as_json:
        click.echo(json.dumps({"workers": answers}, indent=2, sort_keys=True))
    else:
        click.echo(render(table_rows(answers)))
    if any("error" in answer for answer in answers.values()):
        raise SystemExit(1)
