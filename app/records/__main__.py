"""Write (or check) the ``.avsc`` files in ``schemas/`` from the record models.

    python -m app.records          # write schemas/*.avsc
    python -m app.records --check  # exit 1 if any file differs from its model
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.records import ALL_RECORDS

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"


def schema_path(record: type) -> Path:
    name = "".join("-" + c.lower() if c.isupper() else c for c in record.__name__).lstrip("-")
    return SCHEMAS_DIR / f"{name}.avsc"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    stale = []
    for record in ALL_RECORDS:
        path = schema_path(record)
        text = record.schema_text()
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path)
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(SCHEMAS_DIR.parent)}")
    if stale:
        for path in stale:
            print(f"out of date: {path} (run: python -m app.records)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
