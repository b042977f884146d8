'use strict';
// Every messaging flow of leancloud-realtime 4.3.1 against confab: direct messages and their
// options, failures, receipts, unread notifications at login, history, edit and recall (live and
// replayed at reconnect), chat rooms, the base64 transport, and the REST face talking to the same
// engine (send, history, edit, recall, unread counts, broadcasts, kick).
const { test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const {
  Event,
  Message,
  TextMessage,
  BinaryMessage,
  TypedMessage,
  RecalledMessage,
  MessageStatus,
  MessagePriority,
  MessageQueryDirection,
  messageType,
  messageField,
  ChatRoom,
  ServiceConversation,
} = require('leancloud-realtime');
const { startConfab, next, none, sleep, eventually } = require('../lib/harness');

// An app-defined typed message (what `@messageType(1) @messageField(['op'])` declares).
class OpMessage extends TypedMessage {}
messageType(1)(OpMessage);
messageField(['op'])(OpMessage);

let srv;
before(async () => {
  srv = await startConfab();
});
after(async () => {
  assert.equal(await srv.stop(), 0, 'confab exits cleanly on SIGTERM');
});

// Client ids unique to this file's run, so tests never see each other's messages.
let seq = 0;
const uid = (name) => `${name}-${++seq}`;

// Every client a test logs in is closed after it.
const opened = [];
afterEach(async () => {
  for (const c of opened.splice(0)) {
    await c.close().catch(() => {});
  }
});

/** Log `id` in on a new Realtime (its own WebSocket). */
async function login(id, realtimeOpts = {}, clientOpts = {}) {
  const rt = srv.realtime(realtimeOpts);
  rt.register(OpMessage);
  const client = await rt.createIMClient(id, clientOpts);
  opened.push(client);
  return client;
}

/** Every `event` an emitter raises from now on, as argument arrays. */
function collect(emitter, event) {
  const got = [];
  emitter.on(event, (...args) => got.push(args));
  return got;
}

/** Every message a client receives from now on; `wait(id)` resolves [message, conversation]. */
function inbox(client) {
  const all = [];
  client.on(Event.MESSAGE, (m, c) => all.push([m, c]));
  return { all, wait: (id, ms = 5000) => eventually(() => all.find(([m]) => m.id === id), ms) };
}

/** Wait for the `message` event carrying message id `id`. */
function messageWithId(client, id, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`message ${id} not received within ${ms} ms`)), ms);
    const handler = (msg, conv) => {
      if (msg.id === id) {
        clearTimeout(timer);
        client.off(Event.MESSAGE, handler);
        resolve([msg, conv]);
      }
    };
    client.on(Event.MESSAGE, handler);
  });
}

/** The SDK error a promise rejects with. */
async function rejection(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  assert.fail('expected a rejection');
}

const bytes = (buf) => Array.from(new Uint8Array(buf));
const ms = (t) => (t instanceof Date ? t.getTime() : Number(t));

// ---------------------------------------------------------------------------- direct messages

test('direct: text, custom JSON and binary delivered intact to members and the sender\'s other devices, never echoed', async () => {
  const [a, b, c] = [uid('alice'), uid('bob'), uid('carol')];
  const alice = await login(a);
  const alice2 = await login(a); // the same client on a second device
  const bob = await login(b);
  const carol = await login(c);
  const conv = await alice.createConversation({ members: [b, c], name: 'three' });
  const echoed = collect(alice, Event.MESSAGE);
  const others = [inbox(bob), inbox(carol), inbox(alice2)];
  const everywhere = (id) => Promise.all(others.map((box) => box.wait(id)));

  // TextMessage
  const text = new TextMessage('hello 👋 everyone').setAttributes({ k: 'v', n: [1, 2] });
  const before = Date.now();
  const sent = await conv.send(text);
  assert.equal(sent, text);
  assert.equal(sent.status, MessageStatus.SENT);
  assert.match(sent.id, /^\d+$/, 'the ack carries the server message id');
  assert.ok(sent.timestamp instanceof Date && Math.abs(sent.timestamp.getTime() - before) < 5000, 'the ack carries the server time');
  assert.equal(sent.from, a);
  assert.equal(sent.cid, conv.id);
  for (const [msg, mconv] of await everywhere(sent.id)) {
    assert.ok(msg instanceof TextMessage);
    assert.equal(msg.text, 'hello 👋 everyone');
    assert.deepEqual(msg.attributes, { k: 'v', n: [1, 2] });
    assert.equal(msg.from, a);
    assert.equal(msg.timestamp.getTime(), sent.timestamp.getTime());
    assert.equal(msg.status, MessageStatus.SENT);
    assert.equal(mconv.id, conv.id);
    assert.equal(mconv.name, 'three');
  }

  // a custom JSON message (plain Message with an object)
  const custom = { kind: 'custom', n: 42, nested: { list: [1, 'two', null], yes: true }, uni: '中文' };
  const sentCustom = await conv.send(new Message(custom));
  for (const [msg] of await everywhere(sentCustom.id)) {
    assert.equal(msg.constructor, Message);
    assert.deepEqual(msg.content, custom);
  }

  // an app-defined typed message
  const op = new OpMessage();
  op.op = 'draw';
  op.setText('op text');
  const sentOp = await conv.send(op);
  for (const [msg] of await everywhere(sentOp.id)) {
    assert.ok(msg instanceof OpMessage, 'the registered class parses it');
    assert.equal(msg.op, 'draw');
    assert.equal(msg.text, 'op text');
  }

  // BinaryMessage: ArrayBuffer goes as binaryMsg, every byte value intact
  const raw = new Uint8Array(512).map((_, i) => (i * 7 + 3) % 256);
  const sentBin = await conv.send(new BinaryMessage(raw.buffer));
  assert.equal(sentBin.status, MessageStatus.SENT);
  for (const [msg] of await everywhere(sentBin.id)) {
    assert.ok(msg instanceof BinaryMessage);
    assert.deepEqual(bytes(msg.buffer), Array.from(raw));
  }

  // each recipient got each message once, in sending order
  const order = [sent.id, sentCustom.id, sentOp.id, sentBin.id];
  for (const box of others) assert.deepEqual(box.all.map(([m]) => m.id), order);

  // history keeps every kind of content
  const hist = await conv.queryMessages({ limit: 10 });
  assert.deepEqual(hist.map((m) => m.id), order);
  assert.equal(hist[0].text, 'hello 👋 everyone');
  assert.deepEqual(hist[1].content, custom);
  assert.equal(hist[2].op, 'draw');
  assert.ok(hist[3] instanceof BinaryMessage);
  assert.deepEqual(bytes(hist[3].buffer), Array.from(raw));

  await sleep(300);
  assert.equal(echoed.length, 0, 'the sending session never gets its own messages');
});

test('direct: transient messages are delivered and acknowledged but not kept', async () => {
  const [a, b] = [uid('alice'), uid('bob')];
  const alice = await login(a);
  const bob = await login(b);
  const conv = await alice.createConversation({ members: [b] });
  const got = next(bob, Event.MESSAGE);
  const sent = await conv.send(new TextMessage('typing…'), { transient: true });
  assert.equal(sent.status, MessageStatus.SENT);
  assert.ok(sent.id && sent.timestamp instanceof Date, 'a transient message is acked with an id and a time');
  const [msg] = await got;
  assert.equal(msg.text, 'typing…');
  assert.equal(msg.id, sent.id);
  const kept = await conv.send(new TextMessage('kept'));
  const hist = await conv.queryMessages({ limit: 20 });
  assert.deepEqual(hist.map((m) => m.id), [kept.id], 'only the non-transient message is in history');
  const rest = await srv.rest('GET', `/1.2/rtm/conversations/${conv.id}/messages`);
  assert.deepEqual(rest.body.map((r) => r['msg-id']), [kept.id]);
});

test('direct: receipt → DELIVERED when the recipient acks; read → read receipt; fetchReceiptTimestamps', async () => {
  const [a, b] = [uid('alice'), uid('bob')];
  const alice = await login(a);
  const bob = await login(b);
  const conv = await alice.createConversation({ members: [b] });
  const delivered = next(conv, Event.LAST_DELIVERED_AT_UPDATE);
  const got = next(bob, Event.MESSAGE);
  const sent = await conv.send(new TextMessage('did you get it?'), { receipt: true });
  assert.equal(sent.status, MessageStatus.SENT);
  const [, bobConv] = await got;
  await delivered; // bob's SDK acked (throttled, at most 1 s)
  await eventually(() => sent.status === MessageStatus.DELIVERED);
  assert.ok(sent.deliveredAt instanceof Date);
  assert.ok(sent.deliveredAt.getTime() >= sent.timestamp.getTime());
  assert.ok(conv.lastDeliveredAt.getTime() >= sent.timestamp.getTime());

  // a message without receipt stays SENT even though bob acks it
  const plain = await conv.send(new TextMessage('no receipt'));
  await sleep(1500);
  assert.equal(plain.status, MessageStatus.SENT);

  // bob reads: alice hears of it
  const read = next(conv, Event.LAST_READ_AT_UPDATE);
  await bobConv.read();
  await read;
  assert.ok(conv.lastReadAt instanceof Date);
  assert.ok(conv.lastReadAt.getTime() >= sent.timestamp.getTime());

  // another device of alice asks the server
  const alice2 = await login(a);
  const conv2 = await alice2.getConversation(conv.id);
  assert.equal(conv2.lastReadAt, undefined);
  await conv2.fetchReceiptTimestamps();
  assert.ok(conv2.lastReadAt.getTime() >= plain.timestamp.getTime(), 'lastReadAt covers the last message');
  assert.ok(conv2.lastDeliveredAt.getTime() >= plain.timestamp.getTime(), 'lastDeliveredAt covers the last message');

  // history marks the acked message delivered (2-member conversation)
  const hist = await conv2.queryMessages({ limit: 10 });
  const h = hist.find((m) => m.id === sent.id);
  assert.equal(h.status, MessageStatus.DELIVERED);
  assert.ok(h.deliveredAt instanceof Date);
});

test('direct: mentions set message.mentioned on the recipients named, mentionAll on everyone', async () => {
  const [a, b, c] = [uid('alice'), uid('bob'), uid('carol')];
  const alice = await login(a);
  const bob = await login(b);
  const carol = await login(c);
  const conv = await alice.createConversation({ members: [b, c] });

  let gb = next(bob, Event.MESSAGE);
  let gc = next(carol, Event.MESSAGE);
  const m = new TextMessage(`@${b} look`).setMentionList([b]);
  await conv.send(m);
  let [mb, cb] = await gb;
  let [mc] = await gc;
  assert.deepEqual(mb.mentionList, [b]);
  assert.ok(!mb.mentionedAll);
  assert.equal(mb.mentioned, true);
  assert.equal(cb.unreadMessagesMentioned, true);
  assert.equal(mc.mentioned, false);

  gb = next(bob, Event.MESSAGE);
  gc = next(carol, Event.MESSAGE);
  await conv.send(new TextMessage('@all hi').mentionAll());
  [mb] = await gb;
  [mc] = await gc;
  assert.equal(mb.mentionedAll, true);
  assert.equal(mb.mentioned, true);
  assert.equal(mc.mentioned, true);

  // history keeps the mentions
  const hist = await conv.queryMessages({ limit: 2 });
  assert.deepEqual(hist[0].mentionList, [b]);
  assert.equal(hist[1].mentionedAll, true);
});

test('direct: pushData is accepted and the message delivered', async () => {
  const [a, b] = [uid('alice'), uid('bob')];
  const alice = await login(a);
  const bob = await login(b);
  const conv = await alice.createConversation({ members: [b] });
  const got = next(bob, Event.MESSAGE);
  const sent = await conv.send(new TextMessage('with push'), { pushData: { alert: 'you have mail', badge: 'Increment', sound: 'default' } });
  assert.equal(sent.status, MessageStatus.SENT);
  assert.equal((await got)[0].text, 'with push');
});

test('direct: a will message is held, then delivered when the sender drops without logging out', async () => {
  const [a, b] = [uid('alice'), uid('bob')];
  const alice = await login(a);
  const bob = await login(b);
  const conv = await alice.createConversation({ members: [b] });
  const gotAny = collect(bob, Event.MESSAGE);
  const will = await conv.send(new TextMessage(`${a} went offline`), { will: true });
  assert.equal(will.status, MessageStatus.SENT, 'a will message is acked at once');
  await sleep(400);
  assert.equal(gotAny.length, 0, 'not delivered while the sender is connected');
  assert.equal((await conv.queryMessages({ limit: 5 })).length, 0, 'not stored yet');

  const got = next(bob, Event.MESSAGE);
  alice._connection._ws.terminate(); // the socket dies: no session close, no close frame
  const [msg] = await got;
  assert.equal(msg.text, `${a} went offline`);
  assert.equal(msg.from, a);
  await eventually(() => alice._connection.is('connected'), 10000); // the SDK reconnects by itself
});

test('direct: a will message is not sent when the client logs out normally', async () => {
  const [a, b] = [uid('alice'), uid('bob')];
  const rt = srv.realtime();
  const alice = await rt.createIMClient(a);
  const bob = await login(b);
  const conv = await alice.createConversation({ members: [b] });
  await conv.send(new TextMessage('bye'), { will: true });
  const quiet = none(bob, Event.MESSAGE, 800);
  await alice.close();
  assert.ok(await quiet, 'a clean logout discards the will message');
});

test('direct: a non-member, an oversized message and an unknown conversation are refused', async () => {
  const [a, b, c] = [uid('alice'), uid('bob'), uid('carol')];
  const alice = await login(a);
  await login(b);
  const carol = await login(c);
  const conv = await alice.createConversation({ members: [b] });

  const carolsView = await carol.getConversation(conv.id);
  const m = new TextMessage('let me in');
  const e1 = await rejection(carolsView.send(m));
  assert.equal(e1.code, 4401);
  assert.equal(m.status, MessageStatus.FAILED);

  const big = new TextMessage('x'.repeat(6000));
  const e2 = await rejection(conv.send(big));
  assert.equal(e2.code, 4109);
  assert.equal(big.status, MessageStatus.FAILED);
  // just under the limit (5 KB of content) passes
  await conv.send(new Message('y'.repeat(5000)));

  // the conversation is deleted under alice: her cached object now names nothing
  const del = await srv.rest('DELETE', `/1.2/rtm/conversations/${conv.id}`);
  assert.equal(del.status, 200);
  const e3 = await rejection(conv.send(new TextMessage('anyone?')));
  assert.equal(e3.code, 4401);
});

// ---------------------------------------------------------------------------- unread at login

test('unread at login: count, last message and mention after being offline; read() resets it', async () => {
  const [a, b] = [uid('alice'), uid('bob')];
  const alice = await login(a);
  const bobRt = srv.realtime();
  const bob0 = await bobRt.createIMClient(b); // bob exists and leaves
  await bob0.close();
  const conv = await alice.createConversation({ members: [b] });
  const quiet = await alice.createConversation({ members: [b], name: 'quiet' });
  await conv.send(new TextMessage('one'));
  await conv.send(new TextMessage(`two @${b}`).setMentionList([b]));
  const last = await conv.send(new TextMessage('three'));
  await quiet.send(new TextMessage('only one'));

  const bob = await login(b);
  const [convs] = await next(bob, Event.UNREAD_MESSAGES_COUNT_UPDATE);
  const byId = Object.fromEntries(convs.map((x) => [x.id, x]));
  const bc = byId[conv.id];
  assert.ok(bc, 'the conversation with unread messages is announced');
  assert.equal(bc.unreadMessagesCount, 3);
  assert.equal(bc.unreadMessagesMentioned, true);
  assert.ok(bc.lastMessage instanceof TextMessage);
  assert.equal(bc.lastMessage.id, last.id);
  assert.equal(bc.lastMessage.text, 'three');
  assert.equal(bc.lastMessage.from, a);
  assert.equal(bc.lastMessageAt.getTime(), last.timestamp.getTime());
  assert.equal(byId[quiet.id].unreadMessagesCount, 1);
  assert.equal(byId[quiet.id].unreadMessagesMentioned, false);

  const rest0 = await srv.rest('GET', `/1.2/rtm/clients/${b}/unread-count?conv_id=${conv.id}`);
  assert.deepEqual(rest0.body, { count: 3 });

  await bc.read();
  assert.equal(bc.unreadMessagesCount, 0);
  assert.equal(bc.unreadMessagesMentioned, false);
  await eventually(async () => (await srv.rest('GET', `/1.2/rtm/clients/${b}/unread-count?conv_id=${conv.id}`)).body.count === 0);
  assert.deepEqual((await srv.rest('GET', `/1.2/rtm/clients/${b}/unread-count`)).body, { count: 1 }, 'the other conversation is still unread');

  // the next login announces only what is still unread
  await bob.close();
  opened.splice(opened.indexOf(bob), 1);
  const bobAgain = await login(b);
  const [convs2] = await next(bobAgain, Event.UNREAD_MESSAGES_COUNT_UPDATE);
  assert.deepEqual(convs2.map((x) => [x.id, x.unreadMessagesCount]), [[quiet.id, 1]]);
});

// ---------------------------------------------------------------------------- history

test('logs: limit, start/end bounds with ids and closedness, both directions, type filter, ascending order', async () => {
  const [a, b] = [uid('alice'), uid('bob')];
  const alice = await login(a);
  await login(b);
  const conv = await alice.createConversation({ members: [b] });
  const sent = [];
  for (let i = 1; i <= 6; i += 1) {
    if (i % 2 === 0) {
      const op = new OpMessage();
      op.op = `op${i}`;
      sent.push(await conv.send(op));
    } else {
      sent.push(await conv.send(new TextMessage(`m${i}`)));
    }
  }
  const ids = (list) => list.map((m) => m.id);
  const s = (...ns) => ns.map((n) => sent[n - 1].id);
  const at = (n) => sent[n - 1].timestamp;

  const all = await conv.queryMessages();
  assert.deepEqual(ids(all), s(1, 2, 3, 4, 5, 6), 'default: everything (fewer than 20), oldest first');
  assert.ok(all[0] instanceof TextMessage && all[1] instanceof OpMessage);
  assert.equal(all[1].op, 'op2');
  for (let i = 1; i < all.length; i += 1) assert.ok(all[i - 1].timestamp <= all[i].timestamp, 'ascending time');

  assert.deepEqual(ids(await conv.queryMessages({ limit: 3 })), s(4, 5, 6), 'limit takes the newest');
  // start: older than m4 (open), or from m4 (closed)
  assert.deepEqual(ids(await conv.queryMessages({ startTime: at(4), startMessageId: sent[3].id })), s(1, 2, 3));
  assert.deepEqual(ids(await conv.queryMessages({ startTime: at(4), startMessageId: sent[3].id, startClosed: true })), s(1, 2, 3, 4));
  assert.deepEqual(ids(await conv.queryMessages({ startTime: at(4), startMessageId: sent[3].id, limit: 2 })), s(2, 3));
  // end: back to m2 (open), or down to m2 (closed)
  assert.deepEqual(ids(await conv.queryMessages({ endTime: at(2), endMessageId: sent[1].id })), s(3, 4, 5, 6));
  assert.deepEqual(ids(await conv.queryMessages({ endTime: at(2), endMessageId: sent[1].id, endClosed: true })), s(2, 3, 4, 5, 6));
  // both
  assert.deepEqual(
    ids(await conv.queryMessages({ startTime: at(5), startMessageId: sent[4].id, endTime: at(2), endMessageId: sent[1].id })),
    s(3, 4),
  );
  // NEW_TO_OLD explicitly is the default direction
  assert.deepEqual(ids(await conv.queryMessages({ direction: MessageQueryDirection.NEW_TO_OLD, limit: 2 })), s(5, 6));
  // OLD_TO_NEW from a start point: the next newer ones, still oldest first
  assert.deepEqual(
    ids(await conv.queryMessages({ direction: MessageQueryDirection.OLD_TO_NEW, startTime: at(2), startMessageId: sent[1].id, limit: 2 })),
    s(3, 4),
  );
  assert.deepEqual(
    ids(
      await conv.queryMessages({
        direction: MessageQueryDirection.OLD_TO_NEW,
        startTime: at(2),
        startMessageId: sent[1].id,
        startClosed: true,
        limit: 2,
      }),
    ),
    s(2, 3),
  );
  // endTime after startTime without a direction: the SDK asks OLD_TO_NEW
  assert.deepEqual(
    ids(await conv.queryMessages({ startTime: at(1), startMessageId: sent[0].id, endTime: at(5), endMessageId: sent[4].id })),
    s(2, 3, 4),
  );
  assert.deepEqual(
    ids(
      await conv.queryMessages({
        startTime: at(1),
        startMessageId: sent[0].id,
        startClosed: true,
        endTime: at(5),
        endMessageId: sent[4].id,
        endClosed: true,
      }),
    ),
    s(1, 2, 3, 4, 5),
  );
  // type filter
  const texts = await conv.queryMessages({ type: TextMessage.TYPE });
  assert.deepEqual(ids(texts), s(1, 3, 5));
  assert.ok(texts.every((m) => m instanceof TextMessage));
  assert.deepEqual(ids(await conv.queryMessages({ type: OpMessage.TYPE, limit: 2 })), s(4, 6));
  assert.deepEqual(ids(await conv.queryMessages({ type: -2 })), []);
});

test('logs: createMessagesIterator pages through everything exactly once', async () => {
  const [a, b] = [uid('alice'), uid('bob')];
  const alice = await login(a);
  const bob = await login(b);
  const conv = await alice.createConversation({ members: [b] });
  const bobConv = await bob.getConversation(conv.id);
  const sent = [];
  for (let i = 0; i < 11; i += 1) {
    // two senders interleaved, some in quick succession (same millisecond is possible)
    sent.push(await (i % 3 === 2 ? bobConv : conv).send(new TextMessage(`n${i}`)));
  }
  const it = conv.createMessagesIterator({ limit: 4 });
  const pages = [];
  for (;;) {
    const { value, done } = await it.next();
    pages.push(value.map((m) => m.id));
    if (done) break;
  }
  assert.deepEqual(pages.map((p) => p.length), [4, 4, 3]);
  assert.deepEqual(pages.reverse().flat(), sent.map((m) => m.id), 'every message once, in order');

  // exact multiple of the page size: a final empty page ends it
  const it2 = conv.createMessagesIterator({ limit: 11 });
  assert.equal((await it2.next()).value.length, 11);
  const last = await it2.next();
  assert.deepEqual(last, { value: [], done: true });
});

test('logs: a recalled message comes back as RecalledMessage, an edited one with its new content and updatedAt', async () => {
  const [a, b] = [uid('alice'), uid('bob')];
  const alice = await login(a);
  const bob = await login(b);
  const conv = await alice.createConversation({ members: [b] });
  const m1 = await conv.send(new TextMessage('to recall'));
  const m2 = await conv.send(new TextMessage('to edit'));
  const m3 = await conv.send(new TextMessage('untouched'));
  await conv.recall(m1);
  const before = Date.now();
  await conv.update(m2, new TextMessage('edited ✓').setMentionList([b]));

  const bobConv = await bob.getConversation(conv.id);
  const hist = await bobConv.queryMessages({ limit: 10 });
  assert.deepEqual(hist.map((m) => m.id), [m1.id, m2.id, m3.id]);
  assert.ok(hist[0] instanceof RecalledMessage);
  assert.equal(hist[0].from, a);
  assert.ok(hist[0].updatedAt instanceof Date, 'a recall is a patch too');
  assert.ok(hist[1] instanceof TextMessage);
  assert.equal(hist[1].text, 'edited ✓');
  assert.ok(hist[1].updatedAt instanceof Date);
  assert.ok(hist[1].updatedAt.getTime() >= before - 1000);
  assert.equal(hist[1].timestamp.getTime(), m2.timestamp.getTime(), 'the original time stays');
  assert.ok(hist[1].updatedAt.getTime() > hist[1].timestamp.getTime());
  assert.deepEqual(hist[1].mentionList, [b], 'the edit\'s mentions replace the original\'s (none)');
  assert.equal(hist[1].mentioned, true, 'bob is mentioned by the edited message');
  assert.equal(hist[2].text, 'untouched');
  assert.equal(hist[2].updatedAt.getTime(), hist[2].timestamp.getTime(), 'never patched: updatedAt is the send time');
});

// ---------------------------------------------------------------------------- edit and recall

test('patch: update and recall reach the other members (and the sender\'s other devices) live', async () => {
  const [a, b] = [uid('alice'), uid('bob')];
  const alice = await login(a);
  const alice2 = await login(a);
  const bob = await login(b);
  const conv = await alice.createConversation({ members: [b] });
  const ownUpdates = collect(alice, Event.MESSAGE_UPDATE);
  const ownRecalls = collect(alice, Event.MESSAGE_RECALL);
  const got = next(bob, Event.MESSAGE);
  const sent = await conv.send(new TextMessage('typo'));
  await got;

  const upd = next(bob, Event.MESSAGE_UPDATE);
  const upd2 = next(alice2, Event.MESSAGE_UPDATE);
  const newMsg = await conv.update(sent, new TextMessage('fixed').setMentionList([b]));
  assert.equal(newMsg.id, sent.id);
  const [um, uconv, reason] = await upd;
  assert.ok(um instanceof TextMessage);
  assert.equal(um.id, sent.id);
  assert.equal(um.text, 'fixed');
  assert.equal(um.from, a);
  assert.equal(um.timestamp.getTime(), sent.timestamp.getTime());
  assert.ok(um.updatedAt instanceof Date);
  assert.deepEqual(um.mentionList, [b]);
  assert.equal(um.mentioned, true);
  assert.equal(uconv.id, conv.id);
  assert.equal(reason, undefined, 'no reason: the sender changed it');
  assert.equal((await upd2)[0].text, 'fixed');

  const rec = next(bob, Event.MESSAGE_RECALL);
  const recalled = await conv.recall(newMsg);
  assert.ok(recalled instanceof RecalledMessage);
  const [rm, rconv] = await rec;
  assert.ok(rm instanceof RecalledMessage);
  assert.equal(rm.id, sent.id);
  assert.equal(rconv.id, conv.id);
  assert.ok(rm.updatedAt instanceof Date);

  // others cannot edit or recall my message
  const bobConv = await bob.getConversation(conv.id);
  const e = await rejection(bobConv.update({ id: sent.id, timestamp: sent.timestamp }, new TextMessage('hijack')));
  assert.equal(e.code, 4403);
  await sleep(200);
  assert.equal(ownUpdates.length + ownRecalls.length, 0, 'the patching session gets no echo');
});

test('patch: edits and recalls made while a client is offline reach it when it reconnects', async () => {
  const [a, b] = [uid('alice'), uid('bob')];
  const alice = await login(a);
  const bob = await login(b);
  const conv = await alice.createConversation({ members: [b] });
  const got = next(bob, Event.MESSAGE);
  const m1 = await conv.send(new TextMessage('first'));
  await got;
  const got2 = next(bob, Event.MESSAGE);
  const m2 = await conv.send(new TextMessage('second'));
  const [, bobConv] = await got2;
  await bobConv.read();
  await eventually(async () => (await srv.rest('GET', `/1.2/rtm/clients/${b}/unread-count`)).body.count === 0);

  const offline = next(bob, Event.DISCONNECT);
  bob._connection._ws.terminate(); // bob's network goes away
  await offline;
  await conv.update(m1, new TextMessage('first, edited'));
  await conv.recall(m2);
  const m3 = await conv.send(new TextMessage('while you were away'));
  const updates = collect(bob, Event.MESSAGE_UPDATE);
  const recalls = collect(bob, Event.MESSAGE_RECALL);
  const messages = collect(bob, Event.MESSAGE);
  const unread = next(bob, Event.UNREAD_MESSAGES_COUNT_UPDATE, 10000);
  await next(bob, Event.RECONNECT, 10000); // retried after 1 s, session re-opened with st and lastPatchTime
  await eventually(() => updates.length === 1 && recalls.length === 1);
  assert.equal(updates[0][0].id, m1.id);
  assert.equal(updates[0][0].text, 'first, edited');
  assert.equal(recalls[0][0].id, m2.id);
  assert.ok(recalls[0][0] instanceof RecalledMessage);
  // protocol 3: the missed message is announced as unread, not pushed
  const [convs] = await unread;
  assert.deepEqual(convs.map((x) => [x.id, x.unreadMessagesCount]), [[conv.id, 1]]);
  assert.equal(convs[0].lastMessage.id, m3.id);
  assert.equal(convs[0].lastMessage.text, 'while you were away');
  await sleep(300);
  assert.equal(updates.length + recalls.length, 2, 'each patch once');
  assert.equal(messages.length, 0, 'offline messages are not pushed with protocol 3');
});

// ---------------------------------------------------------------------------- chat rooms

test('chat room: join, present members only, non-joined cannot send, priority, online count and members over REST', async () => {
  const [a, b, c] = [uid('alice'), uid('bob'), uid('carol')];
  const alice = await login(a);
  const bob = await login(b);
  const carol = await login(c);
  const room = await alice.createChatRoom({ name: 'lobby' });
  assert.ok(room instanceof ChatRoom);
  assert.equal(room.transient, true);

  const bobRoom = await bob.getConversation(room.id);
  assert.ok(bobRoom instanceof ChatRoom);
  await bobRoom.join();
  const carolRoom = await carol.getConversation(room.id);
  const carolGot = collect(carol, Event.MESSAGE);
  const aliceEcho = collect(alice, Event.MESSAGE);

  const got = next(bob, Event.MESSAGE);
  const sent = await room.send(new TextMessage('hi room'), { priority: MessagePriority.HIGH });
  assert.equal(sent.status, MessageStatus.SENT);
  const [msg, mconv] = await got;
  assert.equal(msg.id, sent.id);
  assert.equal(msg.text, 'hi room');
  assert.equal(mconv.id, room.id);

  const got2 = next(alice, Event.MESSAGE);
  const back = await bobRoom.send(new TextMessage('hi alice'), { priority: MessagePriority.LOW });
  assert.equal((await got2)[0].id, back.id);

  const e = await rejection(carolRoom.send(new TextMessage('me too')));
  assert.equal(e.code, 4401, 'a client that has not joined cannot send');

  const count = await srv.rest('GET', `/1.2/rtm/chatrooms/${room.id}/members/online-count`);
  assert.deepEqual(count.body, { result: 2 });
  const members = await srv.rest('GET', `/1.2/rtm/chatrooms/${room.id}/members`);
  assert.deepEqual(members.body.result.slice().sort(), [a, b].sort());
  assert.equal(await room.count(), 2);

  // carol joins and now hears the room; bob quits and no longer does
  await carolRoom.join();
  await bobRoom.quit();
  const bobAfter = collect(bob, Event.MESSAGE);
  const gotC = next(carol, Event.MESSAGE);
  const m3 = await room.send(new TextMessage('after the shuffle'));
  assert.equal((await gotC)[0].id, m3.id);
  await sleep(300);
  assert.equal(bobAfter.length, 0, 'a member who quit hears nothing');
  assert.deepEqual(carolGot.map(([m]) => m.id), [m3.id], 'nothing from before carol joined');
  assert.equal(aliceEcho.length, 1, 'alice heard only bob');
  assert.deepEqual((await srv.rest('GET', `/1.2/rtm/chatrooms/${room.id}/members/online-count`)).body, { result: 2 });
});

// ---------------------------------------------------------------------------- base64 transport

test('noBinary: lc.proto2base64.3 with text frames works end to end', async () => {
  const [a, b] = [uid('alice'), uid('bob')];
  const alice = await login(a, { noBinary: true });
  const bob = await login(b, { noBinary: true });
  assert.equal(alice._connection._ws.protocol, 'lc.proto2base64.3');
  const frames = [];
  alice._connection._ws.on('message', (data) => frames.push(typeof data));
  const conv = await alice.createConversation({ members: [b] });
  let got = next(bob, Event.MESSAGE);
  const sent = await conv.send(new TextMessage('base64 all the way'));
  assert.equal((await got)[0].text, 'base64 all the way');
  got = next(bob, Event.MESSAGE);
  const raw = new Uint8Array([0, 255, 10, 13, 0, 128]);
  await conv.send(new BinaryMessage(raw.buffer));
  assert.deepEqual(bytes((await got)[0].buffer), Array.from(raw));
  const hist = await conv.queryMessages();
  assert.equal(hist[0].id, sent.id);
  assert.deepEqual(bytes(hist[1].buffer), Array.from(raw));
  assert.ok(frames.length > 0 && frames.every((t) => t === 'string'), 'the server sends text frames');
});

// ---------------------------------------------------------------------------- one engine, two faces

test('one engine: REST send, history, edit, recall and unread count meet the SDK', async () => {
  const [a, b] = [uid('alice'), uid('bob')];
  const alice = await login(a);
  const bob = await login(b);
  const conv = await alice.createConversation({ members: [b] });
  const base = `/1.2/rtm/conversations/${conv.id}/messages`;

  // REST → SDK
  const gotA = next(alice, Event.MESSAGE);
  const gotB = next(bob, Event.MESSAGE);
  const sentRest = await srv.rest('POST', base, { from_client: 'server-bot', message: JSON.stringify({ _lctype: -1, _lctext: 'from the app server' }) });
  assert.equal(sentRest.status, 200, JSON.stringify(sentRest.body));
  const restId = sentRest.body['msg-id'];
  for (const [m, c] of [await gotA, await gotB]) {
    assert.ok(m instanceof TextMessage);
    assert.equal(m.id, restId);
    assert.equal(m.text, 'from the app server');
    assert.equal(m.from, 'server-bot');
    assert.equal(m.timestamp.getTime(), sentRest.body.timestamp);
    assert.equal(c.id, conv.id);
  }
  // a plain string over REST arrives as a plain Message
  const gotPlain = next(bob, Event.MESSAGE);
  await srv.rest('POST', base, { from_client: a, message: 'just text' });
  const [plain] = await gotPlain;
  assert.equal(plain.content, 'just text');
  assert.equal(plain.from, a);

  // SDK → REST history
  const sdkMsg = await conv.send(new TextMessage('from the SDK'));
  const hist = await srv.rest('GET', `${base}?limit=10`);
  assert.equal(hist.status, 200);
  const rec = hist.body.find((r) => r['msg-id'] === sdkMsg.id);
  assert.ok(rec, 'the SDK message is in REST history');
  assert.equal(rec.from, a);
  assert.equal(rec.timestamp, sdkMsg.timestamp.getTime());
  assert.deepEqual(JSON.parse(rec.data), { _lctext: 'from the SDK', _lctype: -1 });
  assert.equal(rec['conv-id'], conv.id);
  assert.equal(hist.body[0]['msg-id'], sdkMsg.id, 'REST history is newest first');

  // REST edit → messageupdate
  const upd = next(bob, Event.MESSAGE_UPDATE);
  const updA = next(alice, Event.MESSAGE_UPDATE);
  const edit = await srv.rest('PUT', `${base}/${sdkMsg.id}`, {
    from_client: a,
    message: JSON.stringify({ _lctype: -1, _lctext: 'edited by the app server' }),
    timestamp: sdkMsg.timestamp.getTime(),
  });
  assert.equal(edit.status, 200, JSON.stringify(edit.body));
  for (const [m] of [await upd, await updA]) {
    assert.equal(m.id, sdkMsg.id);
    assert.equal(m.text, 'edited by the app server');
  }

  // REST recall → messagerecall
  const rcl = next(bob, Event.MESSAGE_RECALL);
  const recall = await srv.rest('PUT', `${base}/${restId}/recall`, { from_client: 'server-bot', timestamp: sentRest.body.timestamp });
  assert.equal(recall.status, 200, JSON.stringify(recall.body));
  const [rm] = await rcl;
  assert.ok(rm instanceof RecalledMessage);
  assert.equal(rm.id, restId);

  // SDK recall → REST history shows the marker
  const rclA = next(bob, Event.MESSAGE_RECALL);
  await conv.recall(sdkMsg);
  await rclA;
  const hist2 = await srv.rest('GET', `${base}?limit=10`);
  const rec2 = hist2.body.find((r) => r['msg-id'] === sdkMsg.id);
  assert.equal(rec2.recall, true);
  assert.deepEqual(JSON.parse(rec2.data), { _lctype: -127 });
  assert.ok(rec2['patch-timestamp'] >= rec2.timestamp);

  // unread count over REST follows the SDK's read
  const unread = async () => (await srv.rest('GET', `/1.2/rtm/clients/${b}/unread-count?conv_id=${conv.id}`)).body.count;
  assert.equal(await unread(), 1, 'three messages from others, two of them recalled');
  const bobConv = await bob.getConversation(conv.id);
  await bobConv.read();
  await eventually(async () => (await unread()) === 0);
  const more = next(bob, Event.MESSAGE);
  await conv.send(new TextMessage('one more'));
  await more;
  assert.equal(await unread(), 1);
});

test('broadcast: an app-wide broadcast reaches online clients, and a client logging in later gets it', async () => {
  const [a, b] = [uid('alice'), uid('bob')];
  // bob has used the app before, and is offline when the broadcast goes out
  const bob0 = await srv.realtime().createIMClient(b);
  await bob0.close();
  const alice = await login(a);

  const svc = await srv.rest('POST', '/1.2/rtm/service-conversations', { name: 'announcements' });
  assert.equal(svc.status, 200, JSON.stringify(svc.body));
  const cid = svc.body.objectId;
  const got = next(alice, Event.MESSAGE);
  const bc = await srv.rest('POST', '/1.2/rtm/broadcasts', {
    from_client: 'admin',
    conv_id: cid,
    message: JSON.stringify({ _lctype: -1, _lctext: 'maintenance at noon' }),
  });
  assert.equal(bc.status, 200, JSON.stringify(bc.body));
  const [msg, conv] = await got;
  assert.ok(msg instanceof TextMessage);
  assert.equal(msg.text, 'maintenance at noon');
  assert.equal(msg.id, bc.body['msg-id']);
  assert.equal(msg.from, 'admin');
  assert.equal(conv.id, cid);
  assert.ok(conv instanceof ServiceConversation);
  assert.equal(conv.name, 'announcements');

  const bobRt = srv.realtime();
  bobRt.register(OpMessage);
  const bobP = bobRt.createIMClient(b);
  // the broadcast is pushed right after `opened`; listen on the Realtime's first client
  const bob = await bobP;
  opened.push(bob);
  const [later] = await messageWithId(bob, bc.body['msg-id']);
  assert.equal(later.text, 'maintenance at noon');
  assert.equal(later.from, 'admin');

  // not again at the next login
  await bob.close();
  opened.splice(opened.indexOf(bob), 1);
  const bob2 = await login(b);
  assert.ok(await none(bob2, Event.MESSAGE, 600), 'a broadcast is delivered once per client');
});

test('REST kick ends the client\'s session with close code 4115', async () => {
  const a = uid('alice');
  const alice = await login(a);
  const closed = next(alice, Event.CLOSE);
  const r = await srv.rest('POST', `/1.2/rtm/clients/${a}/kick`, { reason: 'bye' });
  assert.equal(r.status, 200);
  const [ev] = await closed;
  assert.equal(ev.code, 4115);
  assert.equal(ev.reason, 'bye');
});
