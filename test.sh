#!/usr/bin/env bash
# Run every test (unit and integration, on the real local stack, started when not running).
# Arguments go to pytest, e.g. `./test.sh tests` for the unit tests only.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
infra/setup.sh --system
exec .venv/bin/python -m pytest "$@"
