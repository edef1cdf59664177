#!/usr/bin/env bash
# bazel run //deploy:validate -- [-n NAMESPACE] [--label KEY=VALUE] [--context C]
# See validate.py.
set -euo pipefail
exec python3 "$(dirname "$0")/validate.py" "$@"
