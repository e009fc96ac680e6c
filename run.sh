#!/usr/bin/env bash
# Set up and run the service once: .venv, the local stack, the dataset, a worker, a replay of
# --rows transactions of the real data, and a summary. Arguments go to `python -m app.demo`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
infra/setup.sh
exec .venv/bin/python -m app.demo "$@"
