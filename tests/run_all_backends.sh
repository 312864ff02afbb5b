#!/usr/bin/env bash
# Runs the whole test suite once per Keras backend; fails if any run fails.
# Extra arguments go to pytest, e.g. `bash tests/run_all_backends.sh -k attention`.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
for backend in tensorflow jax torch; do
    echo "=== KERAS_BACKEND=$backend"
    KERAS_BACKEND=$backend python -m pytest tests -q -p no:cacheprovider "$@" || status=1
done
exit $status
