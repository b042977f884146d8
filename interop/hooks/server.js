#!/usr/bin/env node
// A LeanEngine app for confab's tests: LeanCloud's official LeanEngine SDK (leanengine 3.8.0 with
// leancloud-storage 4.15.2, pinned in ../package-lock.json), unmodified, defining the 14 IM hooks.
// Every request to /1.1/functions/... goes through the SDK's own middleware, so the SDK itself checks
// X-LC-Id, X-LC-Key / X-LC-Sign and X-LC-Hook-Key and answers as a deployed LeanEngine app would.
// What each hook does is scripted by the test over a control API on the same port, under /__test/
// (a path LeanEngine does not serve):
//
//   GET  /__test/calls[?name=_hook]  -> [{name, path, params, headers, at}]  the calls that reached a
//        hook function, oldest first (headers: x-lc-id, x-lc-key, x-lc-sign, x-lc-hook-key,
//        x-lc-session, content-type, those present; at: Unix ms on arrival)
//   POST /__test/script {"name": "_hook", "answers": [answer…], "default": answer}  -> {}
//        replaces that hook's script: the queued answers are used once each, in order, then the
//        default (absent: {"return": {}}). An answer is an object with any of
//          "delayMs": N                  wait N ms first, then do the rest
//          "return": v                   the function returns v (null or absent: returns undefined,
//                                        which LeanEngine answers as 200 {})
//          "throw": {code, message, status}  throw new AV.Cloud.Error(message, {code, status})
//                                        (status absent: LeanEngine's 400)
//          "crash": "msg"                throw new Error(msg): LeanEngine's 500
//   POST /__test/reset  -> {}  forgets the calls and every script
//
// Unscripted, a hook returns {} (200 {"result":{}}).
//
// Environment:
//   LEANCLOUD_APP_ID, LEANCLOUD_APP_KEY, LEANCLOUD_APP_MASTER_KEY, LEANCLOUD_APP_HOOK_KEY  the app's keys
//   LEANCLOUD_APP_PORT   port on 127.0.0.1 (0 or absent: any free port)
//   HOOKS_DEFINED        which hooks the app defines: "all" (or absent), or a comma-separated list
//                        ("" = none). An undefined hook gets LeanEngine's 404 "No such cloud function"
//                        and is not listed by /1.1/functions/_ops/metadatas.
//   HOOKS_TIMEOUT        LeanEngine's function timeout, e.g. "2s" (default 15s; past it: 503, code 124)
//   HOOKS_EXIT_WITH_STDIN=1  exit when stdin closes (the test that spawned it has gone)
//
// Once it listens it prints one line, "listening <port>", to stdout.
'use strict';

const http = require('http');
const AV = require('leanengine');

const env = process.env;

// The 14 IM hooks: the SDK's registration API and the cloud-function name it defines.
const HOOKS = [
  ['onIMMessageReceived', '_messageReceived'],
  ['onIMReceiversOffline', '_receiversOffline'],
  ['onIMMessageSent', '_messageSent'],
  ['onIMMessageUpdate', '_messageUpdate'],
  ['onIMConversationStart', '_conversationStart'],
  ['onIMConversationStarted', '_conversationStarted'],
  ['onIMConversationAdd', '_conversationAdd'],
  ['onIMConversationAdded', '_conversationAdded'],
  ['onIMConversationRemove', '_conversationRemove'],
  ['onIMConversationRemoved', '_conversationRemoved'],
  ['onIMConversationUpdate', '_conversationUpdate'],
  ['onIMClientOnline', '_clientOnline'],
  ['onIMClientOffline', '_clientOffline'],
  ['onIMClientSign', '_rtmClientSign'],
];
const HOOK_NAMES = new Set(HOOKS.map(([, name]) => name));
const RECORDED_HEADERS = ['x-lc-id', 'x-lc-key', 'x-lc-sign', 'x-lc-hook-key', 'x-lc-session', 'content-type'];
const UNSCRIPTED = { return: {} };

let calls = [];
let scripts = new Map(); // hook name -> {answers: [answer…], default: answer}

function nextAnswer(name) {
  const script = scripts.get(name);
  if (!script) return UNSCRIPTED;
  return script.answers.length > 0 ? script.answers.shift() : script.default;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function runHook(name, request) {
  const req = request.expressReq;
  const headers = {};
  for (const h of RECORDED_HEADERS) {
    if (req.headers[h] !== undefined) headers[h] = req.headers[h];
  }
  calls.push({ name, path: req.originalUrl, params: request.params, headers, at: Date.now() });
  const answer = nextAnswer(name);
  if (answer.delayMs) await sleep(answer.delayMs);
  if (answer.crash !== undefined) throw new Error(String(answer.crash));
  if (answer.throw) {
    const t = answer.throw;
    const extra = { code: t.code };
    if (t.status) extra.status = t.status;
    throw new AV.Cloud.Error(t.message, extra);
  }
  return answer.return === null ? undefined : answer.return;
}

// Which hooks to define: functions are registered once, at start.
const definedEnv = env.HOOKS_DEFINED === undefined ? 'all' : env.HOOKS_DEFINED.trim();
const defined = definedEnv === 'all' ? [...HOOK_NAMES] : definedEnv.split(',').map((s) => s.trim()).filter(Boolean);
for (const name of defined) {
  if (!HOOK_NAMES.has(name)) {
    console.error(`HOOKS_DEFINED: ${name} is not one of the 14 IM hooks`);
    process.exit(2);
  }
}
for (const [api, name] of HOOKS) {
  if (defined.includes(name)) AV.Cloud[api]((request) => runHook(name, request));
}

// No storage request is expected; if one is made it fails here at once instead of looking for
// LeanCloud's servers (without serverURLs, AV.init refuses a CN app id).
AV.init({
  appId: env.LEANCLOUD_APP_ID,
  appKey: env.LEANCLOUD_APP_KEY,
  masterKey: env.LEANCLOUD_APP_MASTER_KEY,
  hookKey: env.LEANCLOUD_APP_HOOK_KEY,
  serverURLs: 'http://127.0.0.1:1',
});
const engine = AV.express({ timeout: env.HOOKS_TIMEOUT || '15s' });

function send(res, status, value) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=UTF-8');
  res.end(JSON.stringify(value));
}

function readJson(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      try {
        resolve(body === '' ? {} : JSON.parse(body));
      } catch (e) {
        reject(e);
      }
    });
    req.on('error', reject);
  });
}

async function control(req, res, url) {
  if (req.method === 'GET' && url.pathname === '/__test/calls') {
    const name = url.searchParams.get('name');
    return send(res, 200, name ? calls.filter((c) => c.name === name) : calls);
  }
  if (req.method === 'POST' && url.pathname === '/__test/reset') {
    calls = [];
    scripts = new Map();
    return send(res, 200, {});
  }
  if (req.method === 'POST' && url.pathname === '/__test/script') {
    let body;
    try {
      body = await readJson(req);
    } catch (e) {
      return send(res, 400, { error: `not JSON: ${e.message}` });
    }
    const answers = body.answers === undefined ? [] : body.answers;
    const bad = (a) => a === null || typeof a !== 'object' || Array.isArray(a);
    if (!HOOK_NAMES.has(body.name)) return send(res, 400, { error: `not an IM hook: ${body.name}` });
    if (!Array.isArray(answers) || answers.some(bad)) return send(res, 400, { error: 'answers: an array of objects' });
    if (body.default !== undefined && bad(body.default)) return send(res, 400, { error: 'default: an object' });
    scripts.set(body.name, { answers: [...answers], default: body.default === undefined ? UNSCRIPTED : body.default });
    return send(res, 200, {});
  }
  return send(res, 404, { error: `no control route ${req.method} ${url.pathname}` });
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname.startsWith('/__test/')) {
    control(req, res, url).catch((e) => send(res, 500, { error: String(e) }));
    return;
  }
  engine(req, res, () => send(res, 404, { error: 'This is a LeanEngine application; no such route.' }));
});

server.listen(Number(env.LEANCLOUD_APP_PORT || 0), '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`);
});

if (env.HOOKS_EXIT_WITH_STDIN === '1') {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}
