#!/usr/bin/env bash
# Runs a python test script with Debian's python3 (the pyenv python on PATH
# is not the one the project supports). Args: script, then its args.
set -euo pipefail
exec /usr/bin/python3 "$@"
