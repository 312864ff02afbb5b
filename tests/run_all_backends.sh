#!/usr/bin/env bash
# Runs the whole test suite once per Keras backend; fails if any run fails.
# Extra arguments go to pytest, e.g. `bash tests/run_all_backends.sh -k attention`.
# Test files run in parallel across PYTEST_WORKERS processes (default 2): most
# of a test's time is single-threaded tracing, so two workers use both cores of
# a small machine; each test file stays in one worker with its fixtures.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
for backend in tensorflow jax torch; do
    echo "=== KERAS_BACKEND=$backend"
    KERAS_BACKEND=$backend python -m pytest tests -q -p no:cacheprovider \
        -n "${PYTEST_WORKERS:-2}" --dist loadfile "$@" || status=1
done
exit $status
