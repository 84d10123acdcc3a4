#!/usr/bin/env bash
# Set up a virtual environment and run the main job: `chainrule compare` on the built-in offline dataset (the 8x8
# digits), which trains and compares kNN, a linear SVM, a softmax classifier and an MLP and writes a run folder.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[cli]"
exec .venv/bin/chainrule compare "$@"
