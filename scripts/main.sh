#!/usr/bin/env bash
# Set up a virtual environment and run the main job: `chainrule compare` on the built-in offline dataset (the 8x8
# digits), which trains and compares kNN, a linear SVM, a softmax classifier and an MLP and writes a run folder.
# Arguments go to `chainrule compare` (e.g. `bash scripts/main.sh -v` for every epoch line, `--data ...`).
#
# The installation's own output goes to .venv/install-cli.log (shown only if it fails); it is redone only when
# pyproject.toml has changed since (the install is editable, so code changes need none).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
stamp=.venv/.installed-cli
if [ ! -e "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setting up .venv (pip install -e \".[cli]\"; log: .venv/install-cli.log)..." >&2
  if ! { .venv/bin/python -m pip install -q --upgrade pip && .venv/bin/python -m pip install -q -e ".[cli]"; } \
      >.venv/install-cli.log 2>&1; then
    cat .venv/install-cli.log >&2
    echo "main.sh: installing chainrule into .venv failed (the log is above and in .venv/install-cli.log)" >&2
    exit 1
  fi
  touch "$stamp"
fi
exec .venv/bin/chainrule compare "$@"
