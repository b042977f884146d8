'use strict';
// Acks, recall and server-ended sessions with the official Easemob web SDK (easemob-websdk
// 4.21.1), unmodified, judged by the SDK's own events (specs/easemob-msync.md §9, §11).
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { sleep } = require('../lib/harness');
const em = require('./sdk');

let srv;
em.suite((s) => (srv = s));

async function pair(bobOptions = {}) {
  const a = em.uname('alice');
  const b = em.uname('bob');
  await em.register(srv, a, b);
  const alice = await em.connect(srv, { user: a, pwd: em.PASSWORD });
  const bob = await em.connect(srv, { user: b, pwd: em.PASSWORD }, bobOptions);
  return { a, b, alice, bob };
}

test('delivery and read acks: with `delivery: true` the receiver acks by itself (onDeliveredMessage), a read ack gives onReadMessage', async () => {
  await em.requireMsync(srv);
  const { a, b, alice, bob } = await pair({ delivery: true });
  const sent = await alice.sendText(b, 'ack me');
  const delivered = await alice.seen('onDeliveredMessage', (m) => m.mid === sent.serverMsgId);
  assert.equal(delivered.from, b);
  assert.equal(delivered.to, a);
  await bob.nextText('ack me');
  const read = bob.create({ type: 'read', chatType: 'singleChat', to: a, id: sent.serverMsgId });
  await em.within(bob.conn.send(read), 15000, 'the read ack');
  const got = await alice.seen('onReadMessage', (m) => m.mid === sent.serverMsgId);
  assert.equal(got.from, b);
});

test('recall: recallMessage() resolves and the peer gets onRecallMessage for that id', async () => {
  await em.requireMsync(srv);
  const { a, b, alice, bob } = await pair();
  const sent = await alice.sendText(b, 'oops');
  await bob.nextText('oops');
  await em.within(alice.conn.recallMessage({ mid: sent.serverMsgId, to: b, chatType: 'singleChat' }), 15000, 'recallMessage');
  const recalled = await bob.seen('onRecallMessage', (m) => m.mid === sent.serverMsgId);
  assert.equal(recalled.from, a);
  assert.equal(recalled.to, b);
});

test('a password change over REST ends the SDK session: onError 216, onDisconnected, no reconnect', async () => {
  await em.requireMsync(srv);
  const a = em.uname('alice');
  await em.register(srv, a);
  const alice = await em.connect(srv, { user: a, pwd: em.PASSWORD });
  const kicked = alice.nextEvent('onError', (e) => e.type === em.sdk().statusCode.WEBIM_CONNCTION_USER_KICKED_BY_CHANGE_PASSWORD);
  const disconnected = alice.nextEvent('onDisconnected');
  await em.rest200(srv, 'PUT', `/users/${a}/password`, { newpassword: 'pw-changed-1' });
  await kicked;
  await disconnected;
  await sleep(2500);
  assert.equal(alice.isOpened(), false);
  const seen = alice.events.map(([e]) => e);
  assert.ok(!seen.includes('onReconnecting'), `no reconnect: ${seen.join(', ')}`);
  assert.equal(seen.filter((e) => e === 'onConnected').length, 1, `connected once: ${seen.join(', ')}`);
  // the new password logs in
  const again = await em.connect(srv, { user: a, pwd: 'pw-changed-1' });
  assert.equal(again.isOpened(), true);
});
