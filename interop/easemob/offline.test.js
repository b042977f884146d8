'use strict';
// Offline sync with the official Easemob web SDK (easemob-websdk 4.21.1), unmodified: what a user
// was sent while offline comes at the next login, each message exactly once and in send order per
// conversation, across more than two pull pages (confab pages by 20, chained by nextKey), between
// onOfflineMessageSyncStart and onOfflineMessageSyncFinish; the next login of the same device gets
// none of it again; live delivery goes on after (specs/easemob-msync.md §6).
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { sleep } = require('../lib/harness');
const em = require('./sdk');

let srv;
em.suite((s) => (srv = s));

/** Resolves once `client` has `n` text messages passing `pred`, or rejects after `ms`. */
async function texts(client, n, pred = () => true, ms = 15000) {
  const end = Date.now() + ms;
  for (;;) {
    const got = client.texts.filter(pred);
    if (got.length >= n) return got;
    if (Date.now() > end) throw new Error(`${client.user}: ${got.length} of ${n} texts within ${ms} ms: ${got.map((t) => t.msg).join(', ')}`);
    await sleep(50);
  }
}

/** Where `event` was first raised in `client`'s events (−1: never). */
const indexOf = (client, event) => client.events.findIndex(([e]) => e === event);

test('45 one-to-one and 8 group texts sent while offline: each once, in order, inside the offline sync; none again at the next login; live after', async () => {
  await em.requireMsync(srv);
  const a = em.uname('alice');
  const b = em.uname('bob');
  const c = em.uname('carol');
  await em.register(srv, a, b, c);
  // bob has been online once on this device, and is offline now
  const first = await em.connect(srv, { user: b, pwd: em.PASSWORD }, { deviceId: 'bobs-laptop' });
  first.close();
  const alice = await em.connect(srv, { user: a, pwd: em.PASSWORD });
  const carol = await em.connect(srv, { user: c, pwd: em.PASSWORD });
  const g = await em.rest200(srv, 'POST', '/chatgroups', { groupname: 'away', desc: 'd', public: true, owner: a, members: [b, c] });
  const gid = g.data.groupid;

  const pair = [];
  const group = [];
  for (let i = 1; i <= 45; i++) {
    const msg = `one-to-one #${i}`;
    const sent = await alice.sendText(b, msg);
    pair.push({ msg, id: sent.serverMsgId });
    if (i % 6 === 0) {
      const [sender, who] = i % 12 === 0 ? [carol, 'carol'] : [alice, 'alice'];
      const gmsg = `group #${group.length + 1} from ${who}`;
      const g1 = await sender.sendText(gid, gmsg, { chatType: 'groupChat' });
      group.push({ msg: gmsg, id: g1.serverMsgId, from: sender.user });
    }
  }
  assert.equal(group.length, 7);
  const last = await carol.sendText(gid, 'group #8 from carol', { chatType: 'groupChat' });
  group.push({ msg: 'group #8 from carol', id: last.serverMsgId, from: c });

  const bob = new em.Client(srv, { deviceId: 'bobs-laptop' });
  // how many texts the app had when the sync finished, and at its next task (see below)
  const atFinish = bob.nextEvent('onOfflineMessageSyncFinish', () => true, 20000).then(
    () => new Promise((resolve) => {
      const now = bob.texts.length;
      setTimeout(() => resolve([now, bob.texts.length]), 0);
    }),
  );
  await bob.open({ user: b, pwd: em.PASSWORD });
  await texts(bob, pair.length + group.length);
  const [whenFinished, nextTask] = await atFinish;
  await sleep(500);

  const fromAlice = bob.texts.filter((t) => t.chatType === 'singleChat');
  assert.deepEqual(fromAlice.map((t) => t.msg), pair.map((p) => p.msg), 'the one-to-one texts, once each, in send order');
  assert.deepEqual(fromAlice.map((t) => t.id), pair.map((p) => p.id), 'with the ids the sender was given');
  assert.ok(fromAlice.every((t) => t.from === a && t.to === b));
  const inGroup = bob.texts.filter((t) => t.chatType === 'groupChat');
  assert.deepEqual(inGroup.map((t) => t.msg), group.map((p) => p.msg), 'the group texts, once each, in send order');
  assert.deepEqual(inGroup.map((t) => [t.id, t.from, t.to]), group.map((p) => [p.id, p.from, gid]));
  assert.equal(bob.texts.length, pair.length + group.length, 'nothing else, nothing twice');

  // the sync brackets the messages: Start before the first; Finish once, as the SDK handles the
  // last page (isLast) of the last queue. The SDK decodes a page asynchronously and raises Finish
  // synchronously, so that page's messages (at most one page: 20) reach the app just after Finish,
  // in the same turn: by the app's next task every offline message is there.
  const start = indexOf(bob, 'onOfflineMessageSyncStart');
  const firstText = indexOf(bob, 'onTextMessage');
  assert.ok(start >= 0 && start < firstText, `onOfflineMessageSyncStart (${start}) before the first message (${firstText})`);
  assert.equal(bob.events.filter(([e]) => e === 'onOfflineMessageSyncFinish').length, 1);
  assert.ok(whenFinished >= pair.length + group.length - 20, `at most the last page after Finish: ${whenFinished} before it`);
  assert.equal(nextTask, pair.length + group.length, 'every offline message is in by the next task after Finish');

  // the same SDK instance logs out and in again on the same device (the SDK forgets the ids it
  // saw when it logs out, so nothing would hide a repeat): nothing is delivered again
  bob.conn.close();
  await sleep(300);
  const again = bob;
  again.texts.length = 0;
  await again.open({ user: b, pwd: em.PASSWORD });
  await sleep(1500);
  assert.deepEqual(again.texts.map((t) => t.msg), [], 'no message is delivered twice');
  assert.equal(again.events.filter(([e]) => e === 'onConnected').length, 2, 'connected twice');
  // and what is sent now arrives live, once
  const live = await alice.sendText(b, 'now you are here');
  const got = await again.nextText('now you are here');
  assert.equal(got.id, live.serverMsgId);
  const glive = await carol.sendText(gid, 'group, live', { chatType: 'groupChat' });
  assert.equal((await again.nextText('group, live')).id, glive.serverMsgId);
  await sleep(500);
  assert.deepEqual(again.texts.map((t) => t.msg), ['now you are here', 'group, live']);
});

test('a device never seen before gets the offline messages too, with their types intact (image, custom) and in order', async () => {
  await em.requireMsync(srv);
  const a = em.uname('alice');
  const b = em.uname('bob');
  await em.register(srv, a, b);
  const alice = await em.connect(srv, { user: a, pwd: em.PASSWORD });
  const sent = [];
  const send = async (fields) => {
    const r = await em.within(alice.conn.send(alice.create({ chatType: 'singleChat', to: b, ...fields })), 20000, fields.type);
    sent.push([fields.type, r.serverMsgId]);
  };
  const png = Buffer.from('89504e470d0a1a0a0000000d4948445200000001', 'hex');
  await send({ type: 'txt', msg: 'look' });
  await send({ type: 'img', file: { data: new File([png], 'p.png', { type: 'image/png' }), filename: 'p.png', filetype: 'png', url: '' }, width: 3, height: 2 });
  await send({ type: 'custom', customEvent: 'like', customExts: { on: 'p.png' } });
  await send({ type: 'txt', msg: 'what do you think?' });

  const bob = new em.Client(srv, { deviceId: 'bobs-new-phone' });
  const finished = bob.nextEvent('onOfflineMessageSyncFinish', () => true, 20000);
  await bob.open({ user: b, pwd: em.PASSWORD });
  await finished;
  const got = bob.events.filter(([e]) => ['onTextMessage', 'onImageMessage', 'onCustomMessage'].includes(e)).map(([, m]) => m);
  assert.deepEqual(got.map((m) => [m.type, m.id]), sent, 'each once, in order');
  const img = got[1];
  assert.equal(img.width, 3);
  assert.equal(img.height, 2);
  assert.equal(Number(img.file_length), png.length);
  assert.deepEqual(got[2].customExts, { on: 'p.png' });
});

/**
 * bob's socket drops (no close frame, no logout) and alice sends 25 texts, the first `wait` ms
 * after the drop; bob's SDK reconnects by itself and must get each once, in order.
 */
async function droppedConnection(wait) {
  const a = em.uname('alice');
  const b = em.uname('bob');
  await em.register(srv, a, b);
  const alice = await em.connect(srv, { user: a, pwd: em.PASSWORD });
  const bob = await em.connect(srv, { user: b, pwd: em.PASSWORD }, { deviceId: 'bobs-train-phone', autoReconnectNumMax: 5 });
  await alice.sendText(b, 'before the tunnel');
  await bob.nextText('before the tunnel');
  // the network drops: the socket ends without a close frame
  const socket = Object.values(bob.conn).find((v) => v instanceof globalThis.WebSocket && v.readyState === 1);
  assert.ok(socket, 'the SDK socket');
  const reconnected = bob.nextEvent('onConnected', () => true, 15000);
  socket.terminate();
  await sleep(wait);
  const sent = [];
  for (let i = 1; i <= 25; i++) {
    const msg = `in the tunnel #${i}`;
    sent.push([msg, (await alice.sendText(b, msg)).serverMsgId]);
  }
  await reconnected;
  await texts(bob, 1 + sent.length);
  await sleep(1000);
  assert.deepEqual(bob.texts.slice(1).map((t) => [t.msg, t.id]), sent, 'each once, in order, after the reconnect');
  assert.equal(bob.texts.length, 1 + sent.length);
  assert.ok(bob.events.some(([e]) => e === 'onReconnecting'), 'the SDK reconnected by itself');
  const live = await alice.sendText(b, 'out of the tunnel');
  assert.equal((await bob.nextText('out of the tunnel')).id, live.serverMsgId);
}

test('a dropped connection (no logout): the SDK reconnects by itself and gets what was sent meanwhile, once each and in order', async () => {
  await em.requireMsync(srv);
  // the server has seen the socket end before the first message
  await droppedConnection(500);
});

test(
  'a message sent in the moment the connection drops is not lost',
  async () => {
    await em.requireMsync(srv);
    await droppedConnection(0);
  },
);
