#!/usr/bin/env bash
# Runs the cluster suite (cluster/*.test.js): LeanCloud's official realtime SDK against three confab
# nodes on one PostgreSQL database and one NATS server, behind a TCP load balancer, over TLS with
# a self-signed certificate (as run.sh).
#   (and what lib/run-env.sh reads: CONFAB_BIN …)
#   CONFAB_TEST_DATABASE_URL   a PostgreSQL server (postgres://user@host:port/db): each cluster gets a
#                              fresh database on it (psql), dropped when the run ends
#   CONFAB_TEST_NATS_URL       a NATS server with JetStream (nats://host:4222)
#   npm ci first installs the SDK.
# When a test fails, the end of each node's log is printed.
set -euo pipefail
cd "$(dirname "$0")"
if [ -z "${CONFAB_TEST_DATABASE_URL:-}" ] || [ -z "${CONFAB_TEST_NATS_URL:-}" ]; then
  echo "the cluster suite needs CONFAB_TEST_DATABASE_URL (postgres://user@host:port/db) and CONFAB_TEST_NATS_URL (nats://host:4222)" >&2
  exit 1
fi
. lib/run-env.sh
export CONFAB_CLUSTER_LOGS="$work/logs"
mkdir -p "$CONFAB_CLUSTER_LOGS"
started=$SECONDS
status=0
run_suite cluster/ "$@" || status=$?
echo "# the cluster suite took $((SECONDS - started)) s"
if [ "$status" -ne 0 ]; then
  for log in "$CONFAB_CLUSTER_LOGS"/*.log; do
    [ -e "$log" ] || continue
    echo "# ---- the last 60 lines of $(basename "$log")"
    tail -n 60 "$log" | sed 's/^/# /'
  done
fi
exit "$status"
