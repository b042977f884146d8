#!/usr/bin/env bash
# Runs the interop suite: LeanCloud's official realtime SDK (leancloud-realtime 4.3.1, pinned in
# package-lock.json) against a real confab binary over TLS with a self-signed certificate, so the
# SDK's https:// REST calls and wss:// work as in production. lib/run-env.sh says what it reads
# (CONFAB_BIN, CONFAB_IT_STORE=postgres …); npm ci first installs the SDK.
set -euo pipefail
cd "$(dirname "$0")"
. lib/run-env.sh
run_suite tests/ "$@"
