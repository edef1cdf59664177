#!/usr/bin/env bash
# Runs golden_test.py with Debian's python3 (python3-jsonpatch), not the
# pyenv python on PATH.
set -euo pipefail
exec /usr/bin/python3 "$(dirname "$0")/golden_test.py" "$@"
