#!/usr/bin/env bash
# Runs the Easemob suite (easemob/): the official Easemob web SDK (easemob-websdk 4.21.1) and Agora
# Chat web SDK (agora-chat 1.4.0), unmodified under Node (easemob/sdk.js gives them the browser
# globals they need), against a real confab binary over TLS with a self-signed certificate: the
# SDKs' https:// REST calls (POST /{org}/{app}/token) and wss://…/websocket (msync) as in production.
#   CONFAB_BIN   the binary (default: ../target/debug/confab; build it first)
#   CONFAB_IT_STORE=postgres with CONFAB_TEST_DATABASE_URL (postgres://user@host:port/db): every
#                server on a fresh PostgreSQL database of that server instead of a data directory
#                (psql makes them; the run's databases are dropped when it ends)
#   EASEMOB_SDK_LOG=1  the SDKs' own logging
#   npm ci first installs the SDKs (pinned in package-lock.json).
set -euo pipefail
cd "$(dirname "$0")"
export CONFAB_BIN="${CONFAB_BIN:-$(cd .. && pwd)/target/debug/confab}"
if [ ! -x "$CONFAB_BIN" ]; then
  echo "no confab binary at $CONFAB_BIN: run 'cargo build -p confab-server' first" >&2
  exit 1
fi
if [ "${CONFAB_IT_STORE:-}" = postgres ] && [ -z "${CONFAB_TEST_DATABASE_URL:-}" ]; then
  echo "CONFAB_IT_STORE=postgres needs CONFAB_TEST_DATABASE_URL (postgres://user@host:port/db)" >&2
  exit 1
fi
# the harness names this run's databases after it, so that they can all be dropped at its end
export CONFAB_INTEROP_RUN="r$$x$(date +%s)"
drop_databases() {
  [ "${CONFAB_IT_STORE:-}" = postgres ] || return 0
  local db
  for db in $(psql "$CONFAB_TEST_DATABASE_URL" -X -At -c \
    "SELECT datname FROM pg_database WHERE datname LIKE 'confab\_interop\_${CONFAB_INTEROP_RUN}\_%'"); do
    psql "$CONFAB_TEST_DATABASE_URL" -X -q -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" || echo "could not drop $db" >&2
  done
}
certs=$(mktemp -d)
trap 'rm -rf "$certs"; drop_databases' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
  -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
  -keyout "$certs/key.pem" -out "$certs/cert.pem" 2>/dev/null
export CONFAB_TLS_CERT="$certs/cert.pem" CONFAB_TLS_KEY="$certs/key.pem"
# Node trusts the self-signed certificate like any CA-issued one (no TLS checks are disabled).
export NODE_EXTRA_CA_CERTS="$certs/cert.pem"
# a test that hangs fails after two minutes instead of holding the run
node --test --test-concurrency=2 --test-timeout=120000 "${@:-easemob/}"
