#!/usr/bin/env bash
# Builds cert-manager's controller and cainjector (from the github.com/cert-manager/cert-manager
# Go module, through charts/cert-manager-controllers) once, into ~/.cache/pulltrace/cert-manager/:
# the chart tests run them against the real API server (charts/cert-manager.test.ts). A cold
# build takes 5–7 min on 2 cores; a second run returns at once.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x /usr/local/go/bin/go ] && PATH="/usr/local/go/bin:$PATH"
if [ ! -e node_modules/tsx ]; then
  echo "cert-manager controllers: later (needs npm ci first; the test run builds them)"
  exit 0
fi
exec node --import tsx charts/cert-manager.ts
