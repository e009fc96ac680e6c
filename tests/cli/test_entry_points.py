"""The command line is installed as ``fraudstream`` and runs as ``python -m app.cli``."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_console_script_names_the_group():
    scripts = re.search(r'"console_scripts":\s*\[([^\]]*)\]', (ROOT / "setup.py").read_text()).group(1)
    assert '"fraudstream=app.cli:main"' in scripts


def test_python_m_app_cli_prints_the_commands():
    result = subprocess.run([sys.executable, "-m", "app.cli", "--help"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: fraudstream [OPTIONS] COMMAND")
    for command in ("status", "checkpoint", "reset", "dead-letters"):
        assert f"  {command} " in result.stdout
