#!/usr/bin/env bash
# The project's test command: starts what the suite needs (a local PostgreSQL for the store's conformance
# suite, a Python venv with grpcio for the interop test), then runs every test of the workspace. Set
# TEST_POSTGRES_URL to use a PostgreSQL of your own, TEST_PYTHON a Python of your own.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${TEST_POSTGRES_URL:-}" ]; then
  # shellcheck source=scripts/postgres.sh
  source scripts/postgres.sh
  TEST_POSTGRES_URL=$(ensure_local_postgres)
  export TEST_POSTGRES_URL
fi

if [ -z "${TEST_PYTHON:-}" ]; then
  # shellcheck source=scripts/python.sh
  source scripts/python.sh
  TEST_PYTHON=$(ensure_python_venv)
  export TEST_PYTHON
fi

if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast "$@"
  # nextest does not run doctests.
  cargo test --workspace --locked --doc
else
  cargo test --workspace --locked --no-fail-fast "$@"
fi
