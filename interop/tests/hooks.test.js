'use strict';
// LeanCloud IM hooks seen through leancloud-realtime 4.3.1: confab calls the app's LeanEngine (the official
// leanengine 3.8.0, hooks/server.js); a dropped message raises the SDK's error with the hook's appCode, and a
// message the hook rewrote reaches its sender as MESSAGE_UPDATE with the hook's reason.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const http = require('node:http');
const { spawn, execFileSync } = require('node:child_process');
const { Event, TextMessage } = require('leancloud-realtime');
const { startConfab, next } = require('../lib/harness');

let srv;
let engine;
let enginePort;

function control(method, p, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request({ host: '127.0.0.1', port: enginePort, method, path: p, headers: { 'Content-Type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve(JSON.parse(text)));
    });
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

before(async () => {
  // the app first (for its keys), then its LeanEngine, then confab serving with the hooks set
  srv = await startConfab();
  const lc = srv.app.leancloud;
  engine = spawn(process.execPath, [path.join(__dirname, '../hooks/server.js')], {
    env: {
      ...process.env,
      LEANCLOUD_APP_ID: lc.app_id,
      LEANCLOUD_APP_KEY: lc.app_key,
      LEANCLOUD_APP_MASTER_KEY: lc.master_key,
      LEANCLOUD_APP_HOOK_KEY: lc.hook_key,
      LEANCLOUD_APP_PORT: '0',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  enginePort = await new Promise((resolve, reject) => {
    let out = '';
    engine.stdout.on('data', (c) => {
      out += c;
      const m = /listening (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    engine.on('exit', (code) => reject(new Error(`hooks/server.js exited (${code})`)));
  });
  execFileSync(process.env.CONFAB_BIN, ['app', 'set', 'interop', `hooks.leancloud.url=http://127.0.0.1:${enginePort}`, ...srv.storeArgs]);
  // a running server uses new settings within 5 s
  await new Promise((r) => setTimeout(r, 5500));
});

after(async () => {
  engine.kill();
  assert.equal(await srv.stop(), 0);
});

test('a dropped message raises the error with appCode; a rewritten one tells its sender why', async () => {
  await control('POST', '/__test/script', {
    name: '_messageReceived',
    answers: [{ return: { drop: true, code: 123, detail: 'blocked' } }, { return: { content: JSON.stringify({ _lctype: -1, _lctext: 'a ** b' }), code: 7, detail: 'masked' } }],
  });
  const tom = await srv.realtime().createIMClient('hook-tom');
  const jerry = await srv.realtime().createIMClient('hook-jerry');
  const conv = await tom.createConversation({ members: ['hook-jerry'], name: 'hooks' });
  await assert.rejects(conv.send(new TextMessage('forbidden')), (e) => {
    assert.equal(e.code, 4402);
    assert.equal(e.appCode, 123);
    return true;
  });
  const updated = next(tom, Event.MESSAGE_UPDATE);
  const received = next(jerry, Event.MESSAGE);
  await conv.send(new TextMessage('a XX b'));
  const [m] = await received;
  assert.equal(m.text, 'a ** b');
  const [u, , reason] = await updated;
  assert.equal(u.text, 'a ** b');
  assert.deepEqual({ code: reason.code, detail: reason.detail }, { code: 7, detail: 'masked' });
  await tom.close();
  await jerry.close();
});
