'use strict';
// A three-node confab cluster for the official SDK: one fresh PostgreSQL database, three
// `confab serve` nodes (node ids 1, 2, 3; TLS with the suite's certificate; each on its own port)
// on the NATS server CONFAB_TEST_NATS_URL names, and a TCP load balancer in front of them
// (balancer.js), as production would have. Each node's stderr goes to
// $CONFAB_CLUSTER_LOGS/<name>-node<id>.log (run-cluster.sh shows them when the run fails).
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const https = require('node:https');
const { Realtime } = require('leancloud-realtime');
const { createDatabase, restAt } = require('../lib/harness');
const { startBalancer } = require('./balancer');

const BIN = process.env.CONFAB_BIN;
const CERT = process.env.CONFAB_TLS_CERT;
const KEY = process.env.CONFAB_TLS_KEY;
const NATS = process.env.CONFAB_TEST_NATS_URL;
const LOGS = process.env.CONFAB_CLUSTER_LOGS;

/** The node ids of the cluster. */
const NODE_IDS = [1, 2, 3];

function confab(args) {
  return execFileSync(BIN, args, { encoding: 'utf8' });
}

/**
 * Starts node `id` of the cluster on `db` (listening on `port`, 0 for any); resolves
 * { id, port, proc, exited } once it logs that it serves. `logFile` gets its stderr.
 */
function startNode(db, id, port, logFile) {
  const args = ['serve', '--database-url', db, '--nats-url', NATS, '--node-id', String(id),
    '--listen', `127.0.0.1:${port}`, '--tls-cert', CERT, '--tls-key', KEY];
  const proc = spawn(BIN, args, { env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info' }, stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve(signal || code)));
  let log = '';
  proc.stderr.on('data', (chunk) => {
    fs.appendFileSync(logFile, chunk);
    if (log !== null) log += chunk;
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node ${id} did not start within 20 s:\n${log}`)), 20000);
    proc.stderr.on('data', () => {
      const m = log !== null && /confab is serving, on PostgreSQL addr=127\.0\.0\.1:(\d+) scheme=https node=(\d+)/.exec(log);
      if (!m) return;
      clearTimeout(timer);
      if (Number(m[2]) !== id) reject(new Error(`node ${id} says it is node ${m[2]}`));
      log = null; // from now on only the file keeps it
      resolve({ id, port: Number(m[1]), proc, exited });
    });
    exited.then((how) => {
      clearTimeout(timer);
      reject(new Error(`node ${id} exited (${how}):\n${log}`));
    });
  });
}

/**
 * Starts a cluster named `name` (in log file names). Resolves an object with:
 *   app                the app (`confab app create --json`), made before the nodes start
 *   nodes              { id: {id, port, …} } for node ids 1, 2, 3; lb: the load balancer
 *   realtime(at, extra)  a new Realtime (its own WebSocket) on node `at` (1, 2, 3) or 'lb'
 *   rest(at, method, path, body, opts)  the app's REST API on node `at` or 'lb' (master key)
 *   nodeOf(client)     the id of the node holding an IMClient's WebSocket opened through 'lb'
 *   kill(id), restart(id), healthz(id), createApp(name, limits), stop()
 */
async function startCluster(name) {
  if (!BIN || !CERT || !KEY) throw new Error('run the cluster suite through interop/run-cluster.sh');
  if (!NATS || !process.env.CONFAB_TEST_DATABASE_URL) throw new Error('the cluster suite needs CONFAB_TEST_DATABASE_URL and CONFAB_TEST_NATS_URL');
  const logDir = LOGS || fs.mkdtempSync(path.join(os.tmpdir(), 'confab-cluster-'));
  const logFile = (id) => path.join(logDir, `${name}-node${id}.log`);
  const db = createDatabase();
  // the app first: the tool makes the schema, so the nodes start on a ready database
  const app = JSON.parse(confab(['app', 'create', '--name', 'interop', '--json', '--database-url', db]));
  const started = await Promise.all(NODE_IDS.map((id) => startNode(db, id, 0, logFile(id))));
  const nodes = Object.fromEntries(started.map((n) => [n.id, n]));
  const lb = await startBalancer(started.map((n) => n.port));
  const connections = []; // every Realtime's connection (promises)
  const portOf = (at) => (at === 'lb' ? lb.port : nodes[at].port);

  const cluster = {
    db,
    app,
    nodes,
    lb,
    logDir,
    /** A new Realtime (one WebSocket) on node `at` (1, 2, 3) or 'lb' for the app; `extra` options merged in. */
    realtime(at, extra = {}) {
      const port = portOf(at);
      const lc = app.leancloud;
      const rt = new Realtime({ appId: lc.app_id, appKey: lc.app_key, RTMServers: `wss://127.0.0.1:${port}`, server: `127.0.0.1:${port}`, ...extra });
      // its connection (the one the SDK's clients will use), to close at the end; a failure to
      // connect is the test's to see (createIMClient rejects), not an unhandled rejection here
      const connection = rt._open();
      connection.catch(() => {});
      connections.push(connection);
      return rt;
    },
    /** A REST call on node `at` (1, 2, 3) or 'lb' with the master key; `opts.lc` for another app. */
    rest(at, method, urlPath, body, opts = {}) {
      return restAt(portOf(at), opts.lc || app.leancloud, method, urlPath, body, opts);
    },
    /** Which node (1, 2, 3) holds the WebSocket of `client`, a client that connected through 'lb'. */
    nodeOf(client) {
      const ws = client._connection && client._connection._ws;
      const local = ws && ws._socket && ws._socket.localPort;
      const index = local === undefined ? undefined : lb.nodeFor(local);
      return index === undefined ? undefined : started[index].id;
    },
    /** GET /healthz on node `id`: resolves the HTTP status (or the connection error's code). */
    healthz(id) {
      return new Promise((resolve) => {
        https
          .get({ host: '127.0.0.1', port: nodes[id].port, path: '/healthz' }, (res) => {
            res.resume();
            resolve(res.statusCode);
          })
          .on('error', (e) => resolve(e.code));
      });
    },
    /** SIGKILL node `id`; resolves once it is gone. */
    async kill(id) {
      nodes[id].proc.kill('SIGKILL');
      return nodes[id].exited;
    },
    /** Start node `id` again, with the same id on the same port (so the balancer finds it). */
    async restart(id) {
      const again = await startNode(db, id, nodes[id].port, logFile(id));
      nodes[id] = again;
      started[NODE_IDS.indexOf(id)] = again;
      return again;
    },
    /** Another app in the cluster's database, with limits ({key: value}) set before any node uses it. */
    createApp(appName, limits = {}) {
      const made = JSON.parse(confab(['app', 'create', '--name', appName, '--json', '--database-url', db]));
      for (const [k, v] of Object.entries(limits)) {
        confab(['app', 'limits', appName, '--set', `${k}=${v}`, '--database-url', db]);
      }
      return made;
    },
    /** Close every Realtime, the balancer and the nodes (SIGTERM); resolves the nodes' exit codes by id. */
    async stop() {
      await closeConnections(connections);
      await lb.close();
      const codes = {};
      for (const n of Object.values(nodes)) {
        if (n.proc.exitCode === null && n.proc.signalCode === null) n.proc.kill('SIGTERM');
        codes[n.id] = await n.exited;
      }
      return codes;
    },
  };
  return cluster;
}

/**
 * Close every SDK connection still open (an open WebSocket, or one retrying, keeps the process
 * alive), and drop the SDK's timers that would hold the process for nothing: those of commands
 * never answered (sent to a node that was then killed; 20 s each), and the next retry of a
 * connection closed while it waited to reconnect (the SDK's close leaves it scheduled).
 */
async function closeConnections(connections) {
  for (const p of connections.splice(0)) {
    try {
      const conn = await p;
      for (const pending of Object.values(conn._commands)) clearTimeout(pending.timeout);
      clearTimeout(conn.__scheduledRetry);
      if (!conn.is('closed') && !conn.is('error')) conn.close();
    } catch (_) {
      // never connected
    }
  }
}

module.exports = { startCluster, NODE_IDS };
