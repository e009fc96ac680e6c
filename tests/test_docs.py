"""The documentation points at things that exist: relative links resolve to files (and their
``#anchors`` to headings), every ``FRAUD_*`` variable it names is a setting, and the README's
table of settings gives each one's real default."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", ROOT / "benchmarks" / "README.md", *(ROOT / "docs").glob("*.md")])
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
# Read from the environment by code other than settings.py: the dataset cache of app.data, and
# docker-compose.yml's variables for the published ports.
NOT_SETTINGS = {"FRAUD_DATASET_DIR", "FRAUD_BIND_ADDRESS", "FRAUD_KAFKA_ADVERTISED_HOST"}


def prose(path: Path) -> str:
    """The Markdown of ``path`` without its fenced code blocks."""
    return FENCE.sub("", path.read_text())


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading.

    >>> anchor("The broker's JIT compiler")
    'the-brokers-jit-compiler'
    >>> anchor("`scoring` — throughput, latency")
    'scoring--throughput-latency'
    """
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {anchor(line.lstrip("#")) for line in prose(path).splitlines() if line.startswith("#")}


def relative_links(path: Path) -> list[str]:
    return [target for target in LINK.findall(prose(path)) if not re.match(r"[a-z]+:", target)]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_at_existing_files_and_headings(doc):
    assert doc.exists(), doc
    broken = []
    for target in relative_links(doc):
        file_part, _, fragment = target.partition("#")
        resolved = (doc.parent / file_part).resolve() if file_part else doc
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            broken.append(f"{target}: no heading with that anchor in {resolved.relative_to(ROOT)}")
    assert not broken, f"{doc.relative_to(ROOT)}: {broken}"


def test_the_link_check_sees_links_and_broken_ones(tmp_path):
    doc = tmp_path / "a.md"
    (tmp_path / "b.md").write_text("# Right here\n")
    doc.write_text("[ok](b.md#right-here) [gone](c.md) [web](https://example.org)\n```\n[code](x.md)\n```\n")
    assert relative_links(doc) == ["b.md#right-here", "c.md"]
    assert "right-here" in anchors(tmp_path / "b.md")


def _settings_defaults(texts: dict[str, str]) -> dict:
    """Run settings.py in a clean environment: for each name, its default, and whether the text
    (as a user would set it in FRAUD_<NAME>) parses to that default."""
    code = (
        "import json, os, sys, settings\n"
        "texts = json.loads(sys.argv[1])\n"
        "out = {}\n"
        "for name, text in texts.items():\n"
        "    if not hasattr(settings, name):\n"
        "        out[name] = None\n"
        "        continue\n"
        "    default = getattr(settings, name)\n"
        "    os.environ[settings.PREFIX + name] = text\n"
        "    try:\n"
        "        same = settings._env(name, default) == default\n"
        "    except ValueError:\n"
        "        same = False\n"
        "    out[name] = [repr(default), same]\n"
        "print(json.dumps(out))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUD_")}
    done = subprocess.run([sys.executable, "-c", code, json.dumps(texts)], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def settings_table() -> dict[str, str]:
    """``FRAUD_<NAME>`` -> the default as written in the README's table of settings."""
    section = (ROOT / "README.md").read_text().split("## Settings that matter", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `FRAUD_([A-Z0-9_]+)` \| ([^|]+) \|", section, re.M)
    return {name: ("" if text.strip() == "(empty)" else text.strip().strip("`")) for name, text in rows}


def test_the_readme_gives_each_setting_its_default():
    table = settings_table()
    assert len(table) >= 15, table
    checked = _settings_defaults(table)
    wrong = {name: (table[name], result) for name, result in checked.items() if result is None or not result[1]}
    assert not wrong, f"README defaults that are not settings.py's (written, [actual, matches]): {wrong}"


def test_every_fraud_variable_named_in_the_docs_is_a_setting():
    named = {}
    for doc in DOCS:
        for name in re.findall(r"\bFRAUD_([A-Z0-9_]*[A-Z0-9])\b", doc.read_text()):
            if f"FRAUD_{name}" not in NOT_SETTINGS:
                named.setdefault(name, doc.relative_to(ROOT).as_posix())
    checked = _settings_defaults({name: "" for name in named if "<" not in name})
    unknown = {f"FRAUD_{name}": named[name] for name, result in checked.items() if result is None}
    assert not unknown, f"not in settings.py: {unknown}"
