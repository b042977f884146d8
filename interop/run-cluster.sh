#!/usr/bin/env bash
# Runs the cluster suite (cluster/*.test.js): LeanCloud's official realtime SDK against three confab
# nodes on one PostgreSQL database and one NATS server, behind a TCP load balancer, over TLS with
# a self-signed certificate (as run.sh).
#   CONFAB_BIN                 the binary (default: ../target/debug/confab; build it first)
#   CONFAB_TEST_DATABASE_URL   a PostgreSQL server (postgres://user@host:port/db): each cluster gets a
#                              fresh database on it (psql), dropped when the run ends
#   CONFAB_TEST_NATS_URL       a NATS server with JetStream (nats://host:4222)
#   npm ci first installs the SDK.
# When a test fails, the end of each node's log is printed.
set -euo pipefail
cd "$(dirname "$0")"
export CONFAB_BIN="${CONFAB_BIN:-$(cd .. && pwd)/target/debug/confab}"
if [ ! -x "$CONFAB_BIN" ]; then
  echo "no confab binary at $CONFAB_BIN: run 'cargo build -p confab-server' first" >&2
  exit 1
fi
if [ -z "${CONFAB_TEST_DATABASE_URL:-}" ] || [ -z "${CONFAB_TEST_NATS_URL:-}" ]; then
  echo "the cluster suite needs CONFAB_TEST_DATABASE_URL (postgres://user@host:port/db) and CONFAB_TEST_NATS_URL (nats://host:4222)" >&2
  exit 1
fi
# the harness names this run's databases after it, so that they can all be dropped at its end
export CONFAB_INTEROP_RUN="c$$x$(date +%s)"
drop_databases() {
  local db
  for db in $(psql "$CONFAB_TEST_DATABASE_URL" -X -At -c \
    "SELECT datname FROM pg_database WHERE datname LIKE 'confab\_interop\_${CONFAB_INTEROP_RUN}\_%'"); do
    psql "$CONFAB_TEST_DATABASE_URL" -X -q -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" || echo "could not drop $db" >&2
  done
}
work=$(mktemp -d)
trap 'rm -rf "$work"; drop_databases' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
  -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
export CONFAB_TLS_CERT="$work/cert.pem" CONFAB_TLS_KEY="$work/key.pem"
# Node trusts the self-signed certificate like any CA-issued one (no TLS checks are disabled).
export NODE_EXTRA_CA_CERTS="$work/cert.pem"
export CONFAB_CLUSTER_LOGS="$work/logs"
mkdir -p "$CONFAB_CLUSTER_LOGS"
started=$SECONDS
status=0
# a test that hangs fails after two minutes instead of holding the run
node --test --test-concurrency=2 --test-timeout=120000 "${@:-cluster/}" || status=$?
echo "# the cluster suite took $((SECONDS - started)) s"
if [ "$status" -ne 0 ]; then
  for log in "$CONFAB_CLUSTER_LOGS"/*.log; do
    [ -e "$log" ] || continue
    echo "# ---- the last 60 lines of $(basename "$log")"
    tail -n 60 "$log" | sed 's/^/# /'
  done
fi
exit "$status"
