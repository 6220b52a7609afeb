#!/usr/bin/env bash
# The main job on the embedded default: builds both services, starts the classifier on 127.0.0.1:50051 and the
# registry on 127.0.0.1:50052 with its SQLite file under ./data/, and stops both on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked -p township-classifier -p township-registry
target/release/classifier &
classifier=$!
trap 'kill -TERM "$classifier" 2>/dev/null; wait "$classifier" 2>/dev/null' EXIT
target/release/registry
