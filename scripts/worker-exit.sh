#!/bin/sh
# Kills tenants mid-copy and mid-kernel on both paths, TRIES times each
# (default 100), and prints how soon their workers were gone: the figures
# of docs/reliability.md, "Workers end with their tenant".
# Usage: scripts/worker-exit.sh [TRIES] [CASES]   (CASES: a -run pattern
# under TestWorkerEndsWithTenant, e.g. unix or quic/copy; default all)
set -eu
cd "$(dirname "$0")/.."
WORKER_EXIT_TRIES="${1:-100}" go test ./appliance -run "TestWorkerEndsWithTenant/${2:-}" -count=1 -timeout 60m -v |
	grep -E 'tries;|^(ok|FAIL|---)'
