#!/usr/bin/env bash
# Runs gpu_check_test.py with Debian's python (see README: not pyenv's).
set -euo pipefail
exec /usr/bin/python3 "$(dirname "$0")/gpu_check_test.py"
