#!/usr/bin/env bash
# All benchmarks (not tests): boot-to-ready, readiness and idle cost through the daemon, what the
# liveness check costs an idle guest, the control path, status latency during an image build, the
# image build itself (cold, warm, sizes), on-demand mode's first build and forward, the latency of
# a trivial remote build, and what bounds copying to the builder. Run as root after install-deps.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
node bench/boot.mjs "$@"
node bench/readiness.mjs
node bench/liveness-cost.mjs
node bench/status.mjs
node bench/loop-latency.mjs
node bench/image-build.mjs
node bench/on-demand.mjs
node bench/build-latency.mjs
node bench/transfer.mjs
