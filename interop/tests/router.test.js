'use strict';
// The SDK finds confab with the option apps already set: `server` (the API host) and no
// `RTMServers`. It asks `https://<server>/v1/route` (LeanCloud's RTM router) for the WebSocket
// and connects to what confab answers: its own wss:// address.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Realtime, TextMessage, Event } = require('leancloud-realtime');
const { startConfab, next } = require('../lib/harness');

let srv;
before(async () => {
  srv = await startConfab();
});
after(async () => {
  assert.equal(await srv.stop(), 0, 'confab exits cleanly on SIGTERM');
});

/** A Realtime given only what an app on LeanCloud gave it: app id, app key and `server`. */
function realtime() {
  const lc = srv.app.leancloud;
  // 4.3.1 takes a host without a scheme: it builds `https://${server}/…` itself
  return new Realtime({ appId: lc.app_id, appKey: lc.app_key, server: `127.0.0.1:${srv.port}` });
}

test('the router answers what the SDK reads: server, secondary, ttl', async () => {
  const lc = srv.app.leancloud;
  const info = await Realtime._fetchRTMServers({ appId: lc.app_id, ssl: true, server: `127.0.0.1:${srv.port}` });
  const url = `wss://127.0.0.1:${srv.port}/`;
  assert.deepEqual(info, { server: url, secondary: url, ttl: 3600 });
});

test('with only `server`, two clients log in, chat and read history', async () => {
  const alice = await realtime().createIMClient('alice');
  const bob = await realtime().createIMClient('bob');
  const bobGot = next(bob, Event.MESSAGE);
  const conv = await alice.createConversation({ members: ['bob'], name: 'routed' });
  const sent = await conv.send(new TextMessage('found you through the router'));
  const [msg, bobConv] = await bobGot;
  assert.equal(msg.text, 'found you through the router');
  assert.equal(msg.from, 'alice');
  assert.equal(bobConv.id, conv.id);

  const replyGot = next(alice, Event.MESSAGE);
  await bobConv.send(new TextMessage('and back'));
  const [reply] = await replyGot;
  assert.equal(reply.text, 'and back');
  assert.equal(reply.from, 'bob');

  const history = await conv.queryMessages({ limit: 10 });
  assert.deepEqual(
    history.map((m) => m.text),
    ['found you through the router', 'and back'],
  );
  assert.ok(history.some((m) => m.id === sent.id));
  await alice.close();
  await bob.close();
});

test('an unknown app id is refused at the router', async () => {
  await assert.rejects(
    Realtime._fetchRTMServers({ appId: 'no-such-app', ssl: true, server: `127.0.0.1:${srv.port}` }),
    (e) => e.response && e.response.status === 404 && e.response.data.code === 4100,
  );
});
