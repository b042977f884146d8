'use strict';
// Starts a real confab (the binary, TLS on, a fresh data directory) and gives tests the official
// SDK pointed at it, plus the app's REST API with the master key.
//
// With CONFAB_IT_STORE=postgres (and CONFAB_TEST_DATABASE_URL naming a PostgreSQL server), each
// store is a fresh database on that server instead, served as node 1 (`--database-url`,
// `--node-id 1`): the same tests on the cluster's store. A store is still named by a directory
// (`newStore`), so a test restarts a server on the same store the same way on either;
// `storeArgs(dir)` is what a `confab` command line needs to reach it. run.sh drops the run's
// databases when the run ends.
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const https = require('node:https');
const { Realtime } = require('leancloud-realtime');

const BIN = process.env.CONFAB_BIN;
const CERT = process.env.CONFAB_TLS_CERT;
const KEY = process.env.CONFAB_TLS_KEY;

function confab(args) {
  return execFileSync(BIN, args, { encoding: 'utf8' });
}

/** Whether this run's servers stand on PostgreSQL (CONFAB_IT_STORE=postgres). */
const ON_POSTGRES = process.env.CONFAB_IT_STORE === 'postgres';

/** The database URL of each store made by this process, by its directory. */
const databases = new Map();
let databaseCount = 0;

/** Runs one SQL statement on the PostgreSQL server the tests use (psql, as its superuser). */
function psql(sql) {
  const admin = process.env.CONFAB_TEST_DATABASE_URL;
  if (!admin) throw new Error('CONFAB_IT_STORE=postgres needs CONFAB_TEST_DATABASE_URL (postgres://user@host:port/db)');
  return execFileSync('psql', [admin, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-At', '-c', sql], { encoding: 'utf8' });
}

/**
 * A fresh PostgreSQL database, named after the run (CONFAB_INTEROP_RUN, which run.sh sets and uses
 * to drop the run's databases at its end) and this process; resolves its URL.
 */
function createDatabase() {
  const run = (process.env.CONFAB_INTEROP_RUN || 'adhoc').replace(/[^a-z0-9]/gi, '').toLowerCase();
  const name = `confab_interop_${run}_${process.pid}_${++databaseCount}`;
  psql(`CREATE DATABASE ${name}`);
  const url = new URL(process.env.CONFAB_TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * A fresh store, named by a new temporary directory: the data directory itself on SQLite, or on
 * PostgreSQL the key to a fresh database of its own.
 */
function newStore(prefix = 'confab-interop-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  if (ON_POSTGRES) databases.set(dir, createDatabase());
  return dir;
}

/** The options a `confab` command needs to reach the store `dir` names (see `newStore`). */
function storeArgs(dir) {
  if (!ON_POSTGRES) return ['--data-dir', dir];
  const url = databases.get(dir);
  if (!url) throw new Error(`${dir} is not a store made by newStore()`);
  return ['--database-url', url];
}

/**
 * Start confab. Options: plan ('dev'|'standard'), limits ({key: value} for `confab app limits`),
 * port (to restart on the same port), dir (to restart on the same data directory).
 */
async function startConfab(opts = {}) {
  if (!BIN || !CERT || !KEY) throw new Error('run the suite through interop/run.sh');
  const dir = opts.dir || newStore();
  let app = opts.app;
  if (!app) {
    app = JSON.parse(confab(['app', 'create', '--name', 'interop', '--plan', opts.plan || 'standard', '--json', ...storeArgs(dir)]));
    for (const [k, v] of Object.entries(opts.limits || {})) {
      confab(['app', 'limits', 'interop', '--set', `${k}=${v}`, ...storeArgs(dir)]);
    }
  }
  const listen = `127.0.0.1:${opts.port || 0}`;
  // on PostgreSQL the server is node 1 of a cluster of one (no NATS: the in-process runtime)
  const node = ON_POSTGRES ? ['--node-id', '1'] : [];
  const proc = spawn(BIN, ['serve', ...storeArgs(dir), ...node, '--listen', listen, '--tls-cert', CERT, '--tls-key', KEY], {
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`confab did not start:\n${log}`)), 15000);
    proc.stderr.on('data', (chunk) => {
      log += chunk;
      // "confab is serving addr=…" on SQLite, "confab is serving, on PostgreSQL addr=… node=1" on PostgreSQL
      const m = /confab is serving(?:, on PostgreSQL)? addr=127\.0\.0\.1:(\d+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    proc.on('exit', (code) => reject(new Error(`confab exited (${code}):\n${log}`)));
  });
  const lc = app.leancloud;
  const server = {
    dir,
    /** What a `confab` command needs to reach this server's store. */
    storeArgs: storeArgs(dir),
    app,
    port,
    url: `wss://127.0.0.1:${port}`,
    log: () => log,
    /** A new Realtime (one WebSocket) for this app; extra options are merged in. */
    realtime(extra = {}) {
      return new Realtime({ appId: lc.app_id, appKey: lc.app_key, RTMServers: `wss://127.0.0.1:${port}`, server: `127.0.0.1:${port}`, ...extra });
    },
    /** REST call with the master key (or { key: 'app' } for the app key). Resolves {status, body}. */
    rest(method, urlPath, body, opts) {
      return restAt(port, lc, method, urlPath, body, opts);
    },
    /** Stop the server (SIGTERM) and wait for it to exit. */
    stop() {
      return new Promise((resolve) => {
        if (proc.exitCode !== null) return resolve(proc.exitCode);
        proc.once('exit', (code) => resolve(code));
        proc.kill('SIGTERM');
      });
    },
  };
  return server;
}

/**
 * A LeanCloud REST call to the server on `port` for the app whose LeanCloud keys are `lc`, with
 * the master key (or { key: 'app' } for the app key). Resolves {status, body}.
 */
function restAt(port, lc, method, urlPath, body, { key = 'master', headers = {} } = {}) {
  const data = body === undefined ? undefined : JSON.stringify(body);
  const keyHeader = key === 'master' ? `${lc.master_key},master` : lc.app_key;
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, method, path: urlPath, headers: { 'X-LC-Id': lc.app_id, 'X-LC-Key': keyHeader, 'Content-Type': 'application/json', ...headers } },
      (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => {
          let parsed = null;
          try {
            parsed = JSON.parse(text);
          } catch (_) {
            parsed = text;
          }
          resolve({ status: res.statusCode, body: parsed });
        });
      },
    );
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

/** The next `event` from an emitter, or a rejection after `ms`. */
function next(emitter, event, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${event}' within ${ms} ms`)), ms);
    emitter.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

/** Resolves true if `event` does NOT come within `ms`. */
function none(emitter, event, ms = 500) {
  return new Promise((resolve) => {
    const handler = () => resolve(false);
    emitter.once(event, handler);
    setTimeout(() => {
      emitter.off(event, handler);
      resolve(true);
    }, ms);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Poll `fn` until it returns a truthy value, or throw after `ms`. */
async function eventually(fn, ms = 5000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(25);
  }
}

module.exports = { startConfab, next, none, sleep, eventually, newStore, storeArgs, createDatabase, restAt, ON_POSTGRES };

/**
 * A MaxIM REST call on the same server (headers `app_id`, `access-token`, and `user_id` when
 * `userId` is given). `token` defaults to the app's MaxIM admin token; `token: null` sends none.
 * Resolves the parsed envelope `{code, message, data, ...}` (MaxIM always answers HTTP 200).
 */
function maxim(srv, method, urlPath, body, { token, userId } = {}) {
  const mx = srv.app.maxim;
  const headers = { app_id: mx.app_id, 'Content-Type': 'application/json' };
  const t = token === undefined ? mx.admin_token : token;
  if (t) headers['access-token'] = t;
  if (userId !== undefined) headers.user_id = String(userId);
  const data = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port: srv.port, method, path: urlPath, headers }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`MaxIM ${urlPath}: HTTP ${res.statusCode} ${text}`));
        try {
          resolve(JSON.parse(text));
        } catch (_) {
          reject(new Error(`MaxIM ${urlPath}: not JSON: ${text}`));
        }
      });
    });
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

module.exports.maxim = maxim;

/** One HTTPS request to the server with a JSON body; resolves `{status, body}`. */
function request(srv, method, fullPath, headers, body) {
  const data = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port: srv.port, method, path: fullPath, headers: { 'Content-Type': 'application/json', ...headers } },
      (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode, body: text ? JSON.parse(text) : null });
          } catch (_) {
            reject(new Error(`${fullPath}: not JSON: ${text}`));
          }
        });
      },
    );
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

/**
 * An Easemob REST call on the same server: `/{org}/{app}{urlPath}` with `Authorization: Bearer`.
 * `token` defaults to the app token (fetched once with the app's client id and secret);
 * `token: null` sends none. Resolves `{status, body}` (Easemob answers errors with 4xx statuses).
 */
async function easemob(srv, method, urlPath, body, { token } = {}) {
  const em = srv.app.easemob;
  const base = `/${em.org_name}/${em.app_name}`;
  let bearer = token;
  if (bearer === undefined) {
    if (!srv.easemobToken) {
      const grant = { grant_type: 'client_credentials', client_id: em.client_id, client_secret: em.client_secret };
      const r = await request(srv, 'POST', `${base}/token`, {}, grant);
      if (r.status !== 200) throw new Error(`Easemob app token: ${r.status} ${JSON.stringify(r.body)}`);
      srv.easemobToken = r.body.access_token;
    }
    bearer = srv.easemobToken;
  }
  return request(srv, method, `${base}${urlPath}`, bearer ? { Authorization: `Bearer ${bearer}` } : {}, body);
}

module.exports.easemob = easemob;
