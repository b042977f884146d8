'use strict';
// Server-ended sessions and device conflicts with the official Easemob web SDK (easemob-websdk
// 4.21.1), unmodified, judged by the SDK's own onError / onDisconnected and by whether it tries
// to reconnect (specs/easemob-msync.md §11.2, §11.5): a REST kick (GET /users/{u}/disconnect) is
// 217 USER_KICKED_BY_OTHER_DEVICE, the same device logging in elsewhere 206
// USER_LOGIN_ANOTHER_DEVICE (with the new login's extension), deactivation and deletion 207
// USER_REMOVED; devices with different resources coexist.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { sleep } = require('../lib/harness');
const em = require('./sdk');

let srv;
em.suite((s) => (srv = s));

const codes = () => em.sdk().statusCode;

/**
 * Let a fresh login's exchange end (the SDK's first UNREAD, its statistics) before the server ends
 * the session, so that these tests judge the kick itself; a kick racing the login's first frames
 * is the last test's.
 */
const settle = () => sleep(1000);

/**
 * `client` was ended by the server with SDK error `type`: onError of that type, then onDisconnected,
 * and after a while still closed, without an attempt to reconnect (`connected` times in all).
 */
async function assertEnded(client, errorPromise, disconnectedPromise, { connected = 1 } = {}) {
  const error = await errorPromise;
  await disconnectedPromise;
  // the SDK would try again 1–2 s after an unexpected close
  await sleep(2500);
  assert.equal(client.isOpened(), false, `${client.user} stays closed`);
  const seen = client.events.map(([e]) => e);
  assert.ok(!seen.includes('onReconnecting'), `no reconnect: ${seen.join(', ')}`);
  assert.equal(seen.filter((e) => e === 'onConnected').length, connected, `connected ${connected} time(s): ${seen.join(', ')}`);
  return error;
}

/** What `client` will see when the server ends it with SDK error `type`. */
function willEnd(client, type) {
  return [client.nextEvent('onError', (e) => e && e.type === type, 15000), client.nextEvent('onDisconnected', () => true, 15000)];
}

test('a REST kick (GET /users/{u}/disconnect) ends every device of the user with 217, no reconnect; they may log in again', async () => {
  await em.requireMsync(srv);
  const a = em.uname('alice');
  const b = em.uname('bob');
  await em.register(srv, a, b);
  const laptop = await em.connect(srv, { user: a, pwd: em.PASSWORD }, { deviceId: 'laptop' });
  const phone = await em.connect(srv, { user: a, pwd: em.PASSWORD }, { deviceId: 'phone' });
  const bob = await em.connect(srv, { user: b, pwd: em.PASSWORD });
  const ends = [laptop, phone].map((c) => willEnd(c, codes().WEBIM_CONNCTION_USER_KICKED_BY_OTHER_DEVICE));
  await settle();
  const r = await em.rest200(srv, 'GET', `/users/${a}/disconnect`);
  assert.equal(r.data.result, true, JSON.stringify(r));
  for (const [i, c] of [laptop, phone].entries()) await assertEnded(c, ...ends[i]);
  // others are untouched
  assert.equal(bob.isOpened(), true);
  assert.ok(!bob.events.some(([e]) => e === 'onError' || e === 'onDisconnected'), 'bob is not disturbed');
  // the kicked user logs in again and is reachable
  const back = await em.connect(srv, { user: a, pwd: em.PASSWORD }, { deviceId: 'laptop' });
  const sent = await bob.sendText(a, 'welcome back');
  assert.equal((await back.nextText('welcome back')).id, sent.serverMsgId);
});

test('the same device logging in from another connection: the older gets 206 (with the new login\'s extension) and stops, the newer works', async () => {
  await em.requireMsync(srv);
  const a = em.uname('alice');
  const b = em.uname('bob');
  await em.register(srv, a, b);
  const bob = await em.connect(srv, { user: b, pwd: em.PASSWORD });
  const older = await em.connect(srv, { user: a, pwd: em.PASSWORD }, { deviceId: 'desk' });
  const ended = willEnd(older, codes().WEBIM_CONNCTION_USER_LOGIN_ANOTHER_DEVICE);
  await settle();
  const newer = new em.Client(srv, { deviceId: 'desk' });
  newer.conn.setLoginInfoCustomExt('{"where":"office"}');
  await newer.open({ user: a, pwd: em.PASSWORD });
  const error = await assertEnded(older, ...ended);
  assert.equal(error.data && error.data.loginInfoCustomExt, '{"where":"office"}', `the new login's extension: ${JSON.stringify(error)}`);
  // the newer is not disturbed, and sends and receives
  assert.equal(newer.isOpened(), true);
  assert.ok(!newer.events.some(([e]) => e === 'onError' || e === 'onDisconnected'), 'the newer is not disturbed');
  const sent = await bob.sendText(a, 'to the desk');
  assert.equal((await newer.nextText('to the desk')).id, sent.serverMsgId);
  const back = await newer.sendText(b, 'from the desk');
  assert.equal((await bob.nextText('from the desk')).id, back.serverMsgId);
  await sleep(300);
  assert.deepEqual(older.texts, [], 'the older connection gets nothing more');
});

test('two devices (different resources) coexist: both stay connected, both receive, each sees what the other sent', async () => {
  await em.requireMsync(srv);
  const a = em.uname('alice');
  const b = em.uname('bob');
  await em.register(srv, a, b);
  const bob = await em.connect(srv, { user: b, pwd: em.PASSWORD });
  const laptop = await em.connect(srv, { user: a, pwd: em.PASSWORD }, { deviceId: 'laptop' });
  const phone = await em.connect(srv, { user: a, pwd: em.PASSWORD }, { deviceId: 'phone' });
  // and a third with a fresh random resource (no deviceId)
  const tablet = await em.connect(srv, { user: a, pwd: em.PASSWORD });
  const sent = await bob.sendText(a, 'to every device');
  for (const device of [laptop, phone, tablet]) assert.equal((await device.nextText('to every device')).id, sent.serverMsgId);
  const fromPhone = await phone.sendText(b, 'sent on the phone');
  assert.equal((await bob.nextText('sent on the phone')).id, fromPhone.serverMsgId);
  for (const device of [laptop, tablet]) {
    const copy = await device.nextText('sent on the phone');
    assert.equal(copy.id, fromPhone.serverMsgId);
    assert.equal(copy.from, a);
    assert.equal(copy.to, b);
  }
  await sleep(500);
  for (const device of [laptop, phone, tablet]) {
    assert.equal(device.isOpened(), true);
    assert.ok(!device.events.some(([e]) => e === 'onError' || e === 'onDisconnected'), `${device.user}: no error`);
  }
  const online = await em.rest200(srv, 'GET', `/users/${a}/status`);
  assert.equal(online.data[a], 'online', JSON.stringify(online));
});

test('deactivating a user (REST) ends their sessions with 207 USER_REMOVED, no reconnect; a login is refused until activated', async () => {
  await em.requireMsync(srv);
  const a = em.uname('alice');
  await em.register(srv, a);
  const alice = await em.connect(srv, { user: a, pwd: em.PASSWORD });
  const ended = willEnd(alice, codes().WEBIM_CONNCTION_USER_REMOVED);
  await settle();
  await em.rest200(srv, 'POST', `/users/${a}/deactivate`);
  await assertEnded(alice, ...ended);
  const refused = new em.Client(srv);
  await assert.rejects(refused.open({ user: a, pwd: em.PASSWORD }), (e) => e && e.type !== undefined, 'a deactivated user may not log in');
  refused.close();
  await em.rest200(srv, 'POST', `/users/${a}/activate`);
  const again = await em.connect(srv, { user: a, pwd: em.PASSWORD });
  assert.equal(again.isOpened(), true);
});

test('deleting a user (REST) ends their session with 207 USER_REMOVED, no reconnect', async () => {
  await em.requireMsync(srv);
  const a = em.uname('alice');
  await em.register(srv, a);
  const alice = await em.connect(srv, { user: a, pwd: em.PASSWORD });
  const ended = willEnd(alice, codes().WEBIM_CONNCTION_USER_REMOVED);
  await settle();
  await em.rest200(srv, 'DELETE', `/users/${a}`);
  await assertEnded(alice, ...ended);
});

test('agora-chat 1.4.0 too: a REST kick is its 217, the same device elsewhere its 206', async () => {
  await em.requireMsync(srv);
  const a = em.uname('alice');
  await em.register(srv, a);
  const kicked = await em.connect(srv, { user: a, pwd: em.PASSWORD }, { sdk: 'agora', deviceId: 'one' });
  const agoraCodes = em.sdk('agora').statusCode;
  const ended = willEnd(kicked, agoraCodes.WEBIM_CONNCTION_USER_KICKED_BY_OTHER_DEVICE);
  await settle();
  await em.rest200(srv, 'GET', `/users/${a}/disconnect`);
  await assertEnded(kicked, ...ended);
  const older = await em.connect(srv, { user: a, pwd: em.PASSWORD }, { sdk: 'agora', deviceId: 'two' });
  const replaced = willEnd(older, agoraCodes.WEBIM_CONNCTION_USER_LOGIN_ANOTHER_DEVICE);
  await settle();
  const newer = await em.connect(srv, { user: a, pwd: em.PASSWORD }, { sdk: 'agora', deviceId: 'two' });
  await assertEnded(older, ...replaced);
  assert.equal(newer.isOpened(), true);
});

test(
  'a kick right after login (the SDK\'s first frames in flight) is told too',
  async () => {
    await em.requireMsync(srv);
    for (let i = 0; i < 10; i++) {
      const a = em.uname('alice');
      await em.register(srv, a);
      const alice = await em.connect(srv, { user: a, pwd: em.PASSWORD });
      const told = alice.nextEvent('onError', (e) => e && e.type === codes().WEBIM_CONNCTION_USER_KICKED_BY_OTHER_DEVICE, 5000);
      await em.rest200(srv, 'GET', `/users/${a}/disconnect`);
      try {
        await told;
      } finally {
        alice.close();
      }
    }
  },
);
