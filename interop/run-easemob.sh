#!/usr/bin/env bash
# Runs the Easemob suite (easemob/): the official Easemob web SDK (easemob-websdk 4.21.1) and Agora
# Chat web SDK (agora-chat 1.4.0), unmodified under Node (easemob/sdk.js gives them the browser
# globals they need), against a real confab binary over TLS with a self-signed certificate: the
# SDKs' https:// REST calls (POST /{org}/{app}/token) and wss://…/websocket (msync) as in production.
# lib/run-env.sh says what it reads (CONFAB_BIN, CONFAB_IT_STORE=postgres …);
#   EASEMOB_SDK_LOG=1  the SDKs' own logging
# npm ci first installs the SDKs (pinned in package-lock.json).
set -euo pipefail
cd "$(dirname "$0")"
. lib/run-env.sh
run_suite easemob/ "$@"
