#!/usr/bin/env bash
# Prepare a machine for the service: the Python virtual environment at .venv (with the package and
# its test tools), and with --system the Debian packages the tests use (as root: prometheus,
# docker-compose for `config -q`, curl, openssl for the SASL_SSL test's certificates). Safe to run again: it only does what is missing.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
say() { printf 'setup: %s\n' "$*" >&2; }

if [ "${1:-}" = "--system" ]; then
  missing=()
  command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null 2>&1 || missing+=(maven)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
  command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      say "installing Debian packages: ${missing[*]}"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq >/dev/null
      apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
      # Installing the Debian prometheus package starts its service on :9090; the tests run their
      # own Prometheus. Stop that service only (through its init system), and only when this run
      # installed it: never another Prometheus that happens to run on the machine.
      if [[ " ${missing[*]} " == *" prometheus "* ]]; then
        systemctl stop prometheus >/dev/null 2>&1 || service prometheus stop >/dev/null 2>&1 \
          || say "could not stop the prometheus service just installed (it may hold port 9090)"
      fi
    else
      say "missing system packages (install them as root): ${missing[*]}"
    fi
  fi
  shift
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.installed-$(cat setup.py | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  say "installing the package and its dependencies into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip wheel
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev,report,spark${EXTRAS:+,$EXTRAS}]"
  rm -f .venv/.installed-*
  touch "$stamp"
fi
