#!/usr/bin/env bash
# Set up a virtual environment with the test extras and run the whole test suite.
# Graphviz (the `dot` program) is installed too when it is missing and apt-get can be used, so the graph-rendering
# tests run; without it those tests are skipped and say why.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v dot >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "Installing Graphviz for the graph-drawing tests (apt-get install graphviz)..."
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz) >/dev/null 2>&1 \
      || echo "warning: could not install Graphviz; the SVG/PNG rendering tests will be skipped"
  else
    echo "note: Graphviz's 'dot' is not installed; the SVG/PNG rendering tests will be skipped"
  fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[test]"
exec .venv/bin/python -m pytest -q -n 2 "$@"
