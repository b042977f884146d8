# What every suite's runner (run.sh, run-easemob.sh, run-cluster.sh) sets up, sourced by them:
# the confab binary, this run's name (the harness names its PostgreSQL databases after it, so
# that they are all dropped when the run ends), and a fresh self-signed certificate for
# 127.0.0.1 that Node trusts like any CA-issued one (no TLS checks are disabled).
#   CONFAB_BIN   the binary (default: ../target/debug/confab; build it first)
#   CONFAB_IT_STORE=postgres with CONFAB_TEST_DATABASE_URL (postgres://user@host:port/db): every
#                server on a fresh PostgreSQL database of that server instead of a data directory
# After sourcing: $work is the run's scratch directory (removed at exit), and
# `run_suite DIR ARGS…` runs the node tests (a hung test fails after two minutes).

export CONFAB_BIN="${CONFAB_BIN:-$(cd .. && pwd)/target/debug/confab}"
if [ ! -x "$CONFAB_BIN" ]; then
  echo "no confab binary at $CONFAB_BIN: run 'cargo build -p confab-server' first" >&2
  exit 1
fi
if [ "${CONFAB_IT_STORE:-}" = postgres ] && [ -z "${CONFAB_TEST_DATABASE_URL:-}" ]; then
  echo "CONFAB_IT_STORE=postgres needs CONFAB_TEST_DATABASE_URL (postgres://user@host:port/db)" >&2
  exit 1
fi
export CONFAB_INTEROP_RUN="r$$x$(date +%s)"
drop_databases() {
  [ -n "${CONFAB_TEST_DATABASE_URL:-}" ] || return 0
  command -v psql >/dev/null 2>&1 || return 0
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
export NODE_EXTRA_CA_CERTS="$work/cert.pem"

run_suite() {
  local dir="$1"
  shift
  node --test --test-concurrency=2 --test-timeout=120000 "${@:-$dir}"
}
