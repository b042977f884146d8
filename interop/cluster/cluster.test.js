'use strict';
// The official SDK (leancloud-realtime 4.3.1) on a three-node cluster (harness.js): whatever node a
// client or an app server reaches, it sees one service — REST on any node, chat between clients
// on different nodes (direct, group, chat room), receipts, presence, app-wide broadcasts, kicks and
// single-device conflicts across nodes, and one rate allowance for the whole cluster.
const { test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { TextMessage, Event, MessageStatus } = require('leancloud-realtime');
const { next, none, eventually } = require('../lib/harness');
const { startCluster } = require('./harness');

let cluster;

before(async () => {
  cluster = await startCluster('main');
});

after(async () => {
  if (!cluster) return;
  const codes = await cluster.stop();
  assert.deepEqual(codes, { 1: 0, 2: 0, 3: 0 }, 'every node exits cleanly on SIGTERM');
});

// Client ids unique to this file's run.
let seq = 0;
const uid = (name) => `${name}-${++seq}`;

// Every client a test logs in is closed after it.
const opened = [];
afterEach(async () => {
  for (const c of opened.splice(0)) {
    await c.close().catch(() => {});
  }
});

/** Log `id` in on node `at` (1, 2, 3), on a new Realtime (its own WebSocket). */
async function login(at, id, clientOpts = {}) {
  const client = await cluster.realtime(at).createIMClient(id, clientOpts);
  opened.push(client);
  return client;
}

/** The online ones of `ids`, as REST check-online on node `at` answers. */
async function online(at, ids) {
  const r = await cluster.rest(at, 'POST', '/1.2/rtm/clients/check-online', { client_ids: ids });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.results.slice().sort();
}

/** `conv`'s client sends `text`, and each of `receivers` gets that very message (by id). */
async function sendAndReceive(conv, text, receivers) {
  const inboxes = receivers.map(inbox);
  const sent = await conv.send(new TextMessage(text));
  for (const box of inboxes) {
    const [m, c] = await box.wait(sent.id);
    assert.equal(m.text, text);
    assert.equal(c.id, conv.id);
  }
  return sent;
}

/**
 * Every message `client` receives from now on (a push may come before the sender's own ack);
 * `wait(id)` resolves [message, conversation] once that message came, and stops listening.
 */
function inbox(client) {
  const all = [];
  const handler = (m, c) => all.push([m, c]);
  client.on(Event.MESSAGE, handler);
  return {
    async wait(id, ms = 5000) {
      try {
        return await eventually(() => all.find(([m]) => m.id === id), ms);
      } catch (_) {
        throw new Error(`${client.id}: message ${id} not received within ${ms} ms (got ${JSON.stringify(all.map(([m]) => m.id))})`);
      } finally {
        client.off(Event.MESSAGE, handler);
      }
    },
  };
}

/** The session token the SDK holds for `client`. */
function tokenOf(client) {
  const t = client._sessionManager && client._sessionManager._sessionToken;
  return t && t.originalValue;
}

/**
 * The HTTP status node `at` answers GET /1.1/rtm/notifications with (the SDK's call after a
 * reconnect) for `clientId` with session token `st`: 200 while the token is good, 401 once revoked.
 */
async function tokenStatus(at, clientId, st) {
  const r = await cluster.rest(at, 'GET', `/1.1/rtm/notifications?client_id=${encodeURIComponent(clientId)}&start_ts=0&notification_type=permanent`, undefined, {
    key: 'app',
    headers: { 'X-LC-IM-Session-Token': st },
  });
  return r.status;
}

/** Waits until node `at` refuses `st` (revoked on another node); resolves how long that took (ms). */
async function revokedOn(at, clientId, st) {
  const t0 = Date.now();
  await eventually(async () => (await tokenStatus(at, clientId, st)) === 401, 5000).catch(() => {
    throw new Error(`node ${at} still takes the revoked token of ${clientId} after 5 s`);
  });
  return Date.now() - t0;
}

// ------------------------------------------------------------------------------------- REST

test('REST on any node: a conversation created through node 1 is read and written through node 3', async () => {
  const [a, b] = [uid('rest-a'), uid('rest-b')];
  const made = await cluster.rest(1, 'POST', '/1.2/rtm/conversations', { name: 'made on 1', m: [a, b], topic: 'cluster' });
  assert.equal(made.status, 200, JSON.stringify(made.body));
  const id = made.body.objectId;

  const read = await conversationAt(3, id);
  assert.equal(read.name, 'made on 1');
  assert.equal(read.topic, 'cluster');
  assert.deepEqual(read.m.slice().sort(), [a, b].sort());

  const sent = await cluster.rest(3, 'POST', `/1.2/rtm/conversations/${id}/messages`, { from_client: a, message: 'written on 3' });
  assert.equal(sent.status, 200, JSON.stringify(sent.body));
  const mid = sent.body['msg-id'];
  assert.ok(mid);
  for (const at of [3, 1, 2]) {
    const h = await cluster.rest(at, 'GET', `/1.2/rtm/conversations/${id}/messages`);
    assert.equal(h.status, 200, JSON.stringify(h.body));
    assert.deepEqual(h.body.map((r) => [r['msg-id'], r.from, r.data]), [[mid, a, 'written on 3']], `history on node ${at}`);
  }
  // a change on node 3 is seen on node 1
  const upd = await cluster.rest(3, 'PUT', `/1.2/rtm/conversations/${id}`, { name: 'renamed on 3' });
  assert.equal(upd.status, 200, JSON.stringify(upd.body));
  await eventually(async () => (await conversationAt(1, id)).name === 'renamed on 3', 5000);
});

/** Conversation `id` as the REST query on node `at` finds it. */
async function conversationAt(at, id) {
  const where = encodeURIComponent(JSON.stringify({ objectId: id }));
  const r = await cluster.rest(at, 'GET', `/1.2/rtm/conversations?where=${where}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.results.length, 1, `node ${at} finds conversation ${id}: ${JSON.stringify(r.body)}`);
  return r.body.results[0];
}

// --------------------------------------------------------------------------------------- chat

test('direct chat between a client on node 1 and one on node 2, both ways; unique is unique across nodes', async () => {
  const [a, b] = [uid('dm-a'), uid('dm-b')];
  const alice = await login(1, a);
  const bob = await login(2, b);
  const invited = next(bob, Event.INVITED);
  const conv = await alice.createConversation({ members: [b], unique: true, name: 'a and b' });
  const [, bobConvInvited] = await invited;
  assert.equal(bobConvInvited.id, conv.id);

  // bob asks for the same unique conversation on his node: the same one
  const bobConv = await bob.createConversation({ members: [a], unique: true });
  assert.equal(bobConv.id, conv.id);

  const first = await sendAndReceive(conv, 'hello from node 1', [bob]);
  await sendAndReceive(bobConv, 'hello from node 2', [alice]);
  const history = await bobConv.queryMessages({ limit: 10 });
  assert.deepEqual(history.map((m) => m.text), ['hello from node 1', 'hello from node 2']);
  // a recall on node 1 reaches bob on node 2
  const recall = next(bob, Event.MESSAGE_RECALL);
  await conv.recall(first);
  const [recalled, rconv] = await recall;
  assert.equal(recalled.id, first.id);
  assert.equal(rconv.id, conv.id);
});

test('a group with members on all three nodes: each one\'s message reaches the other two', async () => {
  const [a, b, c] = [uid('grp-a'), uid('grp-b'), uid('grp-c')];
  const alice = await login(1, a);
  const bob = await login(2, b);
  const carol = await login(3, c);
  const joins = [next(bob, Event.INVITED), next(carol, Event.INVITED)];
  const conv = await alice.createConversation({ members: [b, c], name: 'three nodes' });
  const [[, bConv], [, cConv]] = await Promise.all(joins);
  assert.equal(bConv.id, conv.id);
  assert.equal(cConv.id, conv.id);

  await sendAndReceive(conv, 'from node 1', [bob, carol]);
  await sendAndReceive(bConv, 'from node 2', [alice, carol]);
  await sendAndReceive(cConv, 'from node 3', [alice, bob]);
  // a member added on node 3 is pushed to the members on nodes 1 and 2
  const d = uid('grp-d');
  const joined = [next(alice, Event.MEMBERS_JOINED), next(bob, Event.MEMBERS_JOINED)];
  await cConv.add([d]);
  for (const [payload] of await Promise.all(joined)) assert.deepEqual(payload.members, [d]);
});

test('a chat room: clients on two nodes join, and a message from one reaches the other', async () => {
  const [a, b, c] = [uid('room-a'), uid('room-b'), uid('room-c')];
  const alice = await login(1, a);
  const bob = await login(2, b);
  const carol = await login(3, c);
  const room = await alice.createChatRoom({ name: 'lobby' });
  const bobRoom = await bob.getConversation(room.id);
  await bobRoom.join();
  const carolRoom = await carol.getConversation(room.id);
  await carolRoom.join();

  await sendAndReceive(room, 'room from node 1', [bob, carol]);
  await sendAndReceive(bobRoom, 'room from node 2', [alice, carol]);
  // presence in the room is the cluster's: every node counts the three members
  for (const at of [1, 2, 3]) {
    const count = await cluster.rest(at, 'GET', `/1.2/rtm/chatrooms/${room.id}/members/online-count`);
    assert.deepEqual(count.body, { result: 3 }, `online count on node ${at}`);
  }
  // carol quits (on node 3): she no longer hears the room; the others still do
  await carolRoom.quit();
  const carolHears = none(carol, Event.MESSAGE, 800);
  await sendAndReceive(room, 'after carol left', [bob]);
  assert.ok(await carolHears, 'a client that quit hears nothing');
});

// ----------------------------------------------------------------------------------- receipts

test('receipts across nodes: a reader on node 2 acks and reads, the sender on node 1 sees delivered and read', async () => {
  const [a, b] = [uid('rcp-a'), uid('rcp-b')];
  const alice = await login(1, a);
  const bob = await login(2, b);
  const conv = await alice.createConversation({ members: [b] });
  const delivered = next(conv, Event.LAST_DELIVERED_AT_UPDATE, 10000);
  const got = next(bob, Event.MESSAGE);
  const sent = await conv.send(new TextMessage('did you get it?'), { receipt: true });
  assert.equal(sent.status, MessageStatus.SENT);
  const [, bobConv] = await got;
  await delivered; // bob's SDK acked (throttled, at most 1 s)
  await eventually(() => sent.status === MessageStatus.DELIVERED);
  assert.ok(sent.deliveredAt instanceof Date);
  assert.ok(conv.lastDeliveredAt.getTime() >= sent.timestamp.getTime());

  const read = next(conv, Event.LAST_READ_AT_UPDATE, 10000);
  await bobConv.read();
  await read;
  assert.ok(conv.lastReadAt instanceof Date);
  assert.ok(conv.lastReadAt.getTime() >= sent.timestamp.getTime());
  // and node 3 knows: bob's unread count there is 0
  const unread = await cluster.rest(3, 'GET', `/1.2/rtm/clients/${b}/unread-count`);
  assert.deepEqual(unread.body, { count: 0 });
});

// ----------------------------------------------------------------------------------- presence

test('presence: check-online on node 3 sees a client of node 1 online, and offline once it closes', async () => {
  const [a, b] = [uid('on-a'), uid('on-b')];
  assert.deepEqual(await online(3, [a, b]), []);
  const alice = await login(1, a);
  const bob = await login(2, b);
  await eventually(async () => (await online(3, [a, b])).length === 2, 5000);
  assert.deepEqual(await online(3, [a, b]), [a, b].sort());
  // the SDK's own online check (session query) on node 2 sees alice of node 1 too
  assert.deepEqual(await bob.ping([a]), [a]);
  // and the app's stats on node 3 count both (the other tests' clients are closed by now)
  await eventually(async () => (await cluster.rest(3, 'GET', '/1.2/rtm/stats')).body.result.online_user_count === 2, 5000).catch(async () => {
    throw new Error(`stats on node 3: ${JSON.stringify((await cluster.rest(3, 'GET', '/1.2/rtm/stats')).body)}`);
  });

  await alice.close();
  await eventually(async () => (await online(3, [a, b])).length === 1, 5000);
  assert.deepEqual(await online(3, [a, b]), [b]);
  assert.deepEqual(await online(1, [a]), []);
  assert.deepEqual(await bob.ping([a]), []);
});

// ---------------------------------------------------------------------------------- broadcast

test('an app-wide broadcast sent through node 3 reaches clients online on nodes 1 and 2', async () => {
  const [a, b] = [uid('bc-a'), uid('bc-b')];
  const alice = await login(1, a);
  const bob = await login(2, b);
  const svc = await cluster.rest(3, 'POST', '/1.2/rtm/service-conversations', { name: 'announcements' });
  assert.equal(svc.status, 200, JSON.stringify(svc.body));
  const got = [next(alice, Event.MESSAGE), next(bob, Event.MESSAGE)];
  const bc = await cluster.rest(3, 'POST', '/1.2/rtm/broadcasts', {
    from_client: 'admin',
    conv_id: svc.body.objectId,
    message: JSON.stringify({ _lctype: -1, _lctext: 'maintenance at noon' }),
  });
  assert.equal(bc.status, 200, JSON.stringify(bc.body));
  for (const [m, c] of await Promise.all(got)) {
    assert.equal(m.id, bc.body['msg-id']);
    assert.equal(m.text, 'maintenance at noon');
    assert.equal(c.id, svc.body.objectId);
  }
});

// --------------------------------------------------------------------------------------- kick

test('kick: the REST kick sent to node 3 ends the session of a client on node 2 (close 4115)', async () => {
  const a = uid('kick-a');
  const alice = await login(2, a);
  const st = tokenOf(alice);
  // node 1 takes the token (and may cache it) before the kick
  assert.equal(await tokenStatus(1, a, st), 200);
  const closed = next(alice, Event.CLOSE, 10000);
  const r = await cluster.rest(3, 'POST', `/1.2/rtm/clients/${a}/kick`, { reason: 'bye from 3' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const [ev] = await closed;
  assert.equal(ev.code, 4115);
  assert.equal(ev.reason, 'bye from 3');
  await eventually(async () => (await online(1, [a])).length === 0, 5000);
  // the kick revoked the session token on every node
  const ms = await revokedOn(1, a, st);
  console.log(`kick: node 1 refused the revoked token after ${ms} ms`);
  assert.equal(await tokenStatus(2, a, st), 401);
});

// ---------------------------------------------------------------------------- single device

test('single-device login: the same client and tag logging in on node 2 ends (conflict) its session on node 1', async () => {
  const a = uid('sd-a');
  const first = await login(1, a, { tag: 'Web' });
  const st = tokenOf(first);
  assert.equal(await tokenStatus(3, a, st), 200);
  const conflict = next(first, Event.CONFLICT, 10000);
  const closedFirst = none(first, Event.CLOSE, 1500);
  const second = await login(2, a, { tag: 'Web' });
  const [payload] = await conflict;
  assert.equal(typeof payload.reason, 'string');
  assert.ok(await closedFirst, 'conflict, not close');
  // the ended session's token is revoked on every node
  const ms = await revokedOn(3, a, st);
  console.log(`conflict: node 3 refused the revoked token after ${ms} ms`);

  // the new session works: a client on node 3 reaches it
  const bob = await login(3, uid('sd-b'));
  const conv = await bob.createConversation({ members: [a] });
  await sendAndReceive(conv, 'to the device on node 2', [second]);
  // and a different tag on node 3 does not conflict with it
  const noConflict = none(second, Event.CONFLICT, 1000);
  await login(3, a, { tag: 'Mobile' });
  assert.ok(await noConflict, 'another tag does not conflict');
});

// -------------------------------------------------------------------------------- rate limits

test('rate limits are the cluster\'s: REST sends spread over three nodes admit exactly N a minute, then 429', async () => {
  const N = 12;
  // an app of its own, so that no other test's sends count; limits set before any node uses it
  const limited = cluster.createApp('limited', { 'rates.lc.message.per_minute': N });
  const lc = limited.leancloud;
  const made = await cluster.rest(1, 'POST', '/1.2/rtm/conversations', { name: 'metered', m: ['rl-a', 'rl-b'] }, { lc });
  assert.equal(made.status, 200, JSON.stringify(made.body));
  const id = made.body.objectId;

  // 3N sends at once, in turn to nodes 1, 2, 3: N per node would admit them all
  const sends = [];
  for (let i = 0; i < 3 * N; i++) {
    const at = (i % 3) + 1;
    sends.push(cluster.rest(at, 'POST', `/1.2/rtm/conversations/${id}/messages`, { from_client: 'rl-a', message: `m${i}` }, { lc }));
  }
  const answers = await Promise.all(sends);
  const statuses = answers.map((r) => r.status);
  const admitted = statuses.filter((s) => s === 200).length;
  const refused = answers.filter((r) => r.status === 429);
  assert.equal(admitted, N, `admitted ${admitted} of ${3 * N}, statuses by node turn: ${statuses.join(',')}`);
  assert.equal(refused.length, 2 * N, `the rest are 429: ${statuses.join(',')}`);
  assert.deepEqual(refused[0].body, { code: 429, error: 'Too many requests.' });
  // the minute's penalty holds on every node
  for (const at of [1, 2, 3]) {
    const r = await cluster.rest(at, 'POST', `/1.2/rtm/conversations/${id}/messages`, { from_client: 'rl-a', message: 'again' }, { lc });
    assert.equal(r.status, 429, `node ${at} after the allowance: ${r.status}`);
  }
  // exactly the admitted ones were kept
  const h = await cluster.rest(2, 'GET', `/1.2/rtm/conversations/${id}/messages?limit=100`, undefined, { lc });
  assert.equal(h.body.length, N);
});
