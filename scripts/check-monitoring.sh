#!/usr/bin/env bash
# Checks the monitoring assets in examples/monitoring: promtool validates the
# alert rules and the scrape config, and the Go test builds and starts
# servekit serve (batching and cache on), sends traffic and scrapes
# /metrics, runs examples/closedloop's story (rollout, shadow, drift) and
# scrapes it throughout, and fails listing every metric name the dashboard
# or the rules query that neither exports. `make test` runs the same Go test; this script
# also makes promtool and ONNX Runtime mandatory, as CI wants.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export ONNXRUNTIME_LIB=${ONNXRUNTIME_LIB:-$root/third_party/onnxruntime/libonnxruntime.so.1}
command -v promtool >/dev/null || { echo "check-monitoring: promtool missing; run scripts/install-deps.sh" >&2; exit 1; }
promtool check rules examples/monitoring/alerts.yml
promtool check config examples/monitoring/prometheus.yml
SERVEKIT_REQUIRE_ORT=1 SERVEKIT_REQUIRE_PROMTOOL=1 \
  ${GO:-go} test -count=1 -v -run 'TestDashboardShape|TestPromtool|TestMetricsExported' ./examples/monitoring
