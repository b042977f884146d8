'use strict';
// One engine, two faces: LeanCloud's official realtime SDK and confab's MaxIM REST face on the
// same server. A MaxIM user is an SDK client whose client id is the username; MaxIM sends reach
// online SDK clients as typed messages; SDK messages show in MaxIM history; MaxIM recalls reach
// the SDK as `messagerecall`.
const { test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { Event, TextMessage, RecalledMessage } = require('leancloud-realtime');
const { startConfab, next, eventually, maxim } = require('../lib/harness');

let srv;
before(async () => {
  srv = await startConfab();
  assert.ok(srv.app.maxim && srv.app.maxim.app_id && srv.app.maxim.admin_token, '`confab app create --json` prints the MaxIM keys');
});
after(async () => {
  assert.equal(await srv.stop(), 0, 'confab exits cleanly on SIGTERM');
});

const opened = [];
afterEach(async () => {
  for (const c of opened.splice(0)) {
    await c.close().catch(() => {});
  }
});

// Usernames unique to this file's run (MaxIM usernames: letters, digits, _).
let seq = 0;
const uname = (name) => `${name}_${++seq}`;

/** A MaxIM call that must succeed (code 200); the envelope. */
async function mx(method, path, body, opts) {
  const r = await maxim(srv, method, path, body, opts);
  assert.equal(r.code, 200, `${path}: ${JSON.stringify(r)}`);
  return r;
}

/** Register a MaxIM user; its numeric id. */
async function register(name) {
  const r = await mx('POST', '/user/register/v2', { username: name, password: 'pw-123456' }, { token: null });
  assert.equal(typeof r.data.user_id, 'number');
  return r.data.user_id;
}

/** The SDK logged in with this client id. */
async function login(id) {
  const client = await srv.realtime().createIMClient(id);
  opened.push(client);
  return client;
}

/** A MaxIM send acting as `from` (admin token + user_id); the message id. */
async function send(from, body) {
  const r = await mx('POST', '/message/send', body, { userId: from });
  assert.equal(r.msg_ids.length, 1, JSON.stringify(r));
  return r.msg_ids[0];
}

/** MaxIM history of `who` with `opposite` (a user id or a group id), newest first. */
async function history(who, opposite) {
  const r = await mx('GET', `/message/conversation?opposite_id=${opposite}&limit=50`, undefined, { userId: who });
  return r.data.messages;
}

test('an online SDK client receives a MaxIM one-to-one text as a TextMessage', async () => {
  const a = uname('alice');
  const b = uname('bob');
  const aNum = await register(a);
  const bNum = await register(b);
  const bob = await login(b);
  const got = next(bob, Event.MESSAGE);
  const mid = await send(aNum, { type: 1, targets: [bNum], content_type: 0, content: 'hello from maxim' });
  const [msg, conv] = await got;
  assert.ok(msg instanceof TextMessage, `a TextMessage, got ${msg.constructor.name}`);
  assert.equal(msg.text, 'hello from maxim');
  assert.equal(msg.from, a);
  assert.equal(msg.id, String(mid));
  // the conversation is the unique conversation of the pair
  assert.deepEqual(conv.members.slice().sort(), [a, b].sort());
  const same = await bob.createConversation({ members: [a], unique: true });
  assert.equal(same.id, conv.id);
  const h = await same.queryMessages({ limit: 10 });
  assert.ok(h.some((m) => m.id === String(mid) && m.text === 'hello from maxim'));
});

test('an SDK client receives a MaxIM image as a typed image message (_lctype -2, _lcfile)', async () => {
  const a = uname('alice');
  const b = uname('bob');
  const aNum = await register(a);
  const bNum = await register(b);
  const bob = await login(b);
  const got = next(bob, Event.MESSAGE);
  const attachment = { url: 'https://files.example/cat.png', dName: 'cat.png', fLen: 1234, width: 64, height: 48 };
  await send(aNum, { type: 1, targets: [bNum], content_type: 1, content: 'a cat', attachment: JSON.stringify(attachment) });
  const [msg] = await got;
  // the typed-messages plugin (ImageMessage) is not installed: the SDK hands over the typed
  // content as it is, which is what the plugin would parse
  assert.deepEqual(msg.content, {
    _lctype: -2,
    _lctext: 'a cat',
    _lcfile: { url: 'https://files.example/cat.png', metaData: { name: 'cat.png', size: 1234, width: 64, height: 48 } },
  });
});

test('a MaxIM group message reaches an SDK member', async () => {
  const a = uname('alice');
  const b = uname('bob');
  const aNum = await register(a);
  const bNum = await register(b);
  const bob = await login(b);
  const g = await mx('POST', '/group/create', { name: 'team', user_list: [bNum] }, { userId: aNum });
  const gid = g.data.group_id;
  const got = next(bob, Event.MESSAGE);
  const mid = await send(aNum, { type: 2, targets: [gid], content_type: 0, content: 'hello team' });
  const [msg, conv] = await got;
  assert.equal(msg.text, 'hello team');
  assert.equal(msg.id, String(mid));
  assert.equal(conv.id, String(gid), 'the group is the conversation');
  assert.deepEqual(conv.members.slice().sort(), [a, b].sort());
  // and the SDK's reply is in MaxIM's group history
  const sent = await conv.send(new TextMessage('hello back'));
  const h = await history(aNum, gid);
  const m = h.find((x) => String(x.msg_id) === sent.id);
  assert.ok(m, JSON.stringify(h));
  assert.equal(m.ctype, 'TEXT');
  assert.equal(m.content, 'hello back');
  assert.equal(m.from_xid.uid, bNum);
  assert.equal(m.to_xid.uid, gid);
});

test("an SDK message in the unique conversation shows in the other user's MaxIM history", async () => {
  const a = uname('alice');
  const b = uname('bob');
  const aNum = await register(a);
  const bNum = await register(b);
  const alice = await login(a);
  const conv = await alice.createConversation({ members: [b], unique: true });
  const sent = await conv.send(new TextMessage('from the sdk'));
  const h = await history(bNum, aNum);
  assert.equal(h.length, 1, JSON.stringify(h));
  assert.equal(String(h[0].msg_id), sent.id);
  assert.equal(h[0].ctype, 'TEXT');
  assert.equal(h[0].content, 'from the sdk');
  assert.equal(h[0].from_xid.uid, aNum);
  assert.equal(h[0].to_xid.uid, bNum);
  // bob answers over MaxIM into the same conversation; alice's SDK gets it there
  const got = next(alice, Event.MESSAGE);
  const mid = await send(bNum, { type: 1, targets: [aNum], content_type: 0, content: 'from maxim' });
  const [msg, c] = await got;
  assert.equal(c.id, conv.id);
  assert.equal(msg.id, String(mid));
  assert.equal(msg.text, 'from maxim');
  const both = await conv.queryMessages({ limit: 10 });
  assert.deepEqual(both.map((m) => m.id).sort(), [sent.id, String(mid)].sort());
  // the SDK's read moves MaxIM's unread
  const unread = await mx('GET', '/message/unread', undefined, { userId: aNum });
  assert.deepEqual(unread.data.map((e) => [e.conversation_id.uid, e.num]), [[bNum, 1]]);
  await conv.read();
  await eventually(async () => {
    const u = await mx('GET', '/message/unread', undefined, { userId: aNum });
    return u.data.length === 0;
  });
});

test('a MaxIM recall reaches the SDK as messagerecall', async () => {
  const a = uname('alice');
  const b = uname('bob');
  const aNum = await register(a);
  const bNum = await register(b);
  const bob = await login(b);
  const got = next(bob, Event.MESSAGE);
  const mid = await send(aNum, { type: 1, targets: [bNum], content_type: 0, content: 'oops' });
  const [, conv] = await got;
  const recalled = next(bob, Event.MESSAGE_RECALL);
  await mx('POST', '/message/recall', { conversation_id: bNum, msg_id: mid }, { userId: aNum });
  const [r, rc] = await recalled;
  assert.ok(r instanceof RecalledMessage, `a RecalledMessage, got ${r.constructor.name}`);
  assert.equal(r.id, String(mid));
  assert.equal(rc.id, conv.id);
  const h = await conv.queryMessages({ limit: 10 });
  const m = h.find((x) => x.id === String(mid));
  assert.ok(m instanceof RecalledMessage, 'history shows it recalled');
});

test('an SDK recall removes the message from MaxIM history', async () => {
  const a = uname('alice');
  const b = uname('bob');
  const aNum = await register(a);
  const bNum = await register(b);
  const alice = await login(a);
  const conv = await alice.createConversation({ members: [b], unique: true });
  const sent = await conv.send(new TextMessage('retract me'));
  assert.ok((await history(bNum, aNum)).some((m) => String(m.msg_id) === sent.id));
  await conv.recall(sent);
  assert.ok(!(await history(bNum, aNum)).some((m) => String(m.msg_id) === sent.id));
});

test('a LeanCloud-only SDK client is reachable from MaxIM by the numeric id MaxIM lists for it', async () => {
  const a = uname('alice');
  const aNum = await register(a);
  const lcOnly = `lc-only.${++seq}`; // not a MaxIM username: this client exists only on LeanCloud's side
  const sdk = await login(lcOnly);
  const group = await sdk.createConversation({ members: [a], name: 'made by the sdk' });
  // MaxIM sees that conversation as a group of alice's, and lists the SDK client by number
  const list = await mx('GET', `/group/member_list?group_id=${group.id}`, undefined, { userId: aNum });
  const nums = list.data.map((m) => m.user_id);
  assert.equal(nums.length, 2, JSON.stringify(list));
  const sdkNum = nums.find((n) => n !== aNum);
  assert.equal(typeof sdkNum, 'number');
  // a one-to-one to that number reaches the SDK client
  const got = next(sdk, Event.MESSAGE);
  const mid = await send(aNum, { type: 1, targets: [sdkNum], content_type: 0, content: 'found you' });
  const [msg, conv] = await got;
  assert.equal(msg.text, 'found you');
  assert.equal(msg.id, String(mid));
  assert.notEqual(conv.id, group.id, 'a one-to-one is not the group');
  assert.deepEqual(conv.members.slice().sort(), [a, lcOnly].sort());
  // and the SDK's answer there is in alice's MaxIM history with that number
  const sent = await conv.send(new TextMessage('hello maxim'));
  const h = await history(aNum, sdkNum);
  const m = h.find((x) => String(x.msg_id) === sent.id);
  assert.ok(m, JSON.stringify(h));
  assert.equal(m.from_xid.uid, sdkNum);
  assert.equal(m.content, 'hello maxim');
});
