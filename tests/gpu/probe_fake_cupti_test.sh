#!/usr/bin/env bash
# Runs probe_fake_cupti_test.py with Debian's python (it has torch).
set -euo pipefail
exec /usr/bin/python3 "$(dirname "$0")/probe_fake_cupti_test.py" "$@"
