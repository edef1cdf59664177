#!/usr/bin/env bash
# Runs a Python test with Debian's python3 (it has torch; the python3 on
# PATH may not).
exec /usr/bin/python3 "$@"
