#!/usr/bin/env bash
# Runs a python test script with Debian's python3 (the one with torch).
set -euo pipefail
exec /usr/bin/python3 "$@"
