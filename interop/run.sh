#!/usr/bin/env bash
# Runs the interop suite: LeanCloud's official realtime SDK (leancloud-realtime 4.3.1, pinned in
# package-lock.json) against a real confab binary over TLS with a self-signed certificate, so the
# SDK's https:// REST calls and wss:// work as in production.
#   CONFAB_BIN   the binary (default: ../target/debug/confab; build it first)
#   npm ci first installs the SDK.
set -euo pipefail
cd "$(dirname "$0")"
export CONFAB_BIN="${CONFAB_BIN:-$(cd .. && pwd)/target/debug/confab}"
if [ ! -x "$CONFAB_BIN" ]; then
  echo "no confab binary at $CONFAB_BIN: run 'cargo build -p confab-server' first" >&2
  exit 1
fi
certs=$(mktemp -d)
trap 'rm -rf "$certs"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
  -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
  -keyout "$certs/key.pem" -out "$certs/cert.pem" 2>/dev/null
export CONFAB_TLS_CERT="$certs/cert.pem" CONFAB_TLS_KEY="$certs/key.pem"
# Node trusts the self-signed certificate like any CA-issued one (no TLS checks are disabled).
export NODE_EXTRA_CA_CERTS="$certs/cert.pem"
# a test that hangs fails after two minutes instead of holding the run
exec node --test --test-concurrency=2 --test-timeout=120000 "${@:-tests/}"
