'use strict';
// The walk-through the protocol digest outlines: two clients, create, deliver, history, recall.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { TextMessage, Event } = require('leancloud-realtime');
const { startConfab, next } = require('../lib/harness');

let srv;
before(async () => {
  srv = await startConfab();
});
after(async () => {
  assert.equal(await srv.stop(), 0, 'confab exits cleanly on SIGTERM');
});

test('two clients chat: create, deliver, history, recall', async () => {
  const alice = await srv.realtime().createIMClient('alice');
  const bob = await srv.realtime().createIMClient('bob');
  const bobGot = next(bob, Event.MESSAGE);
  const conv = await alice.createConversation({ members: ['bob'], name: 'a&b' });
  assert.deepEqual(conv.members.slice().sort(), ['alice', 'bob']);

  const sent = await conv.send(new TextMessage('hello bob'));
  const [msg, bobConv] = await bobGot;
  assert.equal(msg.text, 'hello bob');
  assert.equal(msg.from, 'alice');
  assert.equal(msg.id, sent.id);
  assert.equal(bobConv.id, conv.id);
  assert.equal(bobConv.name, 'a&b');

  const history = await conv.queryMessages({ limit: 10 });
  assert.ok(history.some((m) => m.id === sent.id && m.text === 'hello bob'));

  const bobSawRecall = next(bob, Event.MESSAGE_RECALL);
  const recalled = await conv.recall(sent);
  assert.equal(recalled.constructor.name, 'RecalledMessage');
  const [r] = await bobSawRecall;
  assert.equal(r.id, sent.id);
  assert.equal(r.constructor.name, 'RecalledMessage');

  await alice.close();
  await bob.close();
});
