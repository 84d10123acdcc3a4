#!/usr/bin/env bash
# Set up a virtual environment with the test extras and run the whole test suite.
# Graphviz (the `dot` program) and Chromium (with chromedriver) are installed too when they are missing and apt-get
# can be used, so the graph-rendering and browser tests run; without them those tests are skipped and say why.
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

# Chromium and its WebDriver for the playground's browser test (Debian's packages; Selenium drives them).
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "Installing Chromium for the playground's browser test (apt-get install chromium chromium-driver)..."
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
      >/dev/null 2>&1 || echo "warning: could not install Chromium; the playground's browser test will be skipped"
  else
    echo "note: chromium / chromedriver are not installed; the playground's browser test will be skipped"
  fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[test]"
exec .venv/bin/python -m pytest -q -n 2 "$@"
