'use strict';
// One engine, two faces: LeanCloud's official realtime SDK and confab's Easemob REST face on the
// same server. An Easemob user is an SDK client whose client id is the username; Easemob sends
// reach online SDK clients; an Easemob group or chat room is the SDK's conversation or chat room;
// Easemob mutes and blocklists hold for what the SDK sends.
const { test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { Event, TextMessage } = require('leancloud-realtime');
const { startConfab, next, eventually, easemob } = require('../lib/harness');

let srv;
before(async () => {
  srv = await startConfab();
  const em = srv.app.easemob;
  assert.ok(em && em.org_name && em.app_name && em.client_id && em.client_secret, '`confab app create --json` prints the Easemob keys');
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

// Usernames unique to this file's run (Easemob usernames: lowercase letters, digits, _ . -).
let seq = 0;
const uname = (name) => `em_${name}_${++seq}`;

/** An Easemob call (app token) that must answer 200; its body. */
async function em(method, path, body) {
  const r = await easemob(srv, method, path, body);
  assert.equal(r.status, 200, `${method} ${path}: ${JSON.stringify(r.body)}`);
  return r.body;
}

async function register(...names) {
  await em('POST', '/users', names.map((username) => ({ username, password: 'pw-123456' })));
}

/** The SDK logged in with this client id. */
async function login(id) {
  const client = await srv.realtime().createIMClient(id);
  opened.push(client);
  return client;
}

test('an online SDK client receives an Easemob one-to-one txt as a TextMessage, in the unique conversation', async () => {
  const a = uname('alice');
  const b = uname('bob');
  await register(a, b);
  const bob = await login(b);
  const got = next(bob, Event.MESSAGE);
  const r = await em('POST', '/messages/users', { from: a, to: [b], type: 'txt', body: { msg: 'hello from easemob' }, ext: { k: 'v' } });
  const mid = r.data[b];
  const [msg, conv] = await got;
  assert.ok(msg instanceof TextMessage, `a TextMessage, got ${msg.constructor.name}`);
  assert.equal(msg.text, 'hello from easemob');
  assert.equal(msg.from, a);
  assert.equal(msg.id, mid);
  assert.deepEqual(conv.members.slice().sort(), [a, b].sort());
  const same = await bob.createConversation({ members: [a], unique: true });
  assert.equal(same.id, conv.id, 'the pair has one conversation');
  // bob answers through the SDK: alice's Easemob conversation list shows it as the last message
  await same.send(new TextMessage('hello back'));
  await eventually(async () => {
    const list = await em('GET', `/user/${a}/user_channels`);
    const ch = list.data.channel_infos.find((c) => c.session_to === b);
    return ch && JSON.parse(ch.meta.payload).bodies[0].msg === 'hello back';
  });
});

test('an Easemob group is the SDK conversation; its messages reach SDK members both ways', async () => {
  const a = uname('alice');
  const b = uname('bob');
  await register(a, b);
  const g = await em('POST', '/chatgroups', { groupname: 'team', public: true, owner: a, members: [b] });
  const gid = g.data.groupid;
  const bob = await login(b);
  const got = next(bob, Event.MESSAGE);
  const r = await em('POST', '/messages/chatgroups', { from: a, to: [gid], type: 'txt', body: { msg: 'hello team' } });
  const [msg, conv] = await got;
  assert.equal(msg.text, 'hello team');
  assert.equal(msg.id, r.data[gid]);
  assert.equal(conv.id, gid, 'the group id is the conversation id');
  assert.deepEqual(conv.members.slice().sort(), [a, b].sort());
  // an SDK member's message reaches an SDK-connected owner too
  const alice = await login(a);
  const toAlice = next(alice, Event.MESSAGE);
  const sent = await conv.send(new TextMessage('hi all'));
  const [m2, c2] = await toAlice;
  assert.equal(m2.id, sent.id);
  assert.equal(c2.id, gid);
});

test('an Easemob group mute, mute-all and global mute refuse what the SDK sends', async () => {
  const a = uname('alice');
  const b = uname('bob');
  await register(a, b);
  const g = await em('POST', '/chatgroups', { groupname: 'quiet', public: true, owner: a, members: [b] });
  const gid = g.data.groupid;
  const bob = await login(b);
  const conv = await bob.getConversation(gid);
  await conv.send(new TextMessage('before'));

  await em('POST', `/chatgroups/${gid}/mute`, { usernames: [b], mute_duration: 60000 });
  await assert.rejects(conv.send(new TextMessage('muted')), { code: 4315 });
  await em('DELETE', `/chatgroups/${gid}/mute/${b}`);
  await conv.send(new TextMessage('unmuted'));

  await em('POST', `/chatgroups/${gid}/ban`, {});
  await assert.rejects(conv.send(new TextMessage('everyone is muted')), { code: 4315 });
  await em('DELETE', `/chatgroups/${gid}/ban`);
  await conv.send(new TextMessage('free again'));

  await em('POST', '/mutes', { username: b, groupchat: 60 });
  await assert.rejects(conv.send(new TextMessage('globally muted')), { code: 4315 });
  await em('POST', '/mutes', { username: b, groupchat: 0 });
  await conv.send(new TextMessage('free once more'));
});

test('an Easemob chat room is an SDK chat room: joiners get its messages, its mutes hold', async () => {
  const a = uname('alice');
  const b = uname('bob');
  await register(a, b);
  const r = await em('POST', '/chatrooms', { name: 'lobby', description: 'all', owner: a });
  const id = r.data.id;
  const bob = await login(b);
  const room = await bob.getConversation(id);
  await room.join();
  // bob is in the room as Easemob sees it
  const members = await em('GET', `/chatrooms/${id}/users`);
  assert.deepEqual(members.data, [{ owner: a }, { member: b }]);
  const got = next(bob, Event.MESSAGE);
  const sent = await em('POST', '/messages/chatrooms', { from: a, to: [id], type: 'txt', body: { msg: 'welcome' } });
  const [msg, conv] = await got;
  assert.equal(msg.text, 'welcome');
  assert.equal(msg.id, sent.data[id]);
  assert.equal(conv.id, id);
  await room.send(new TextMessage('hi room'));
  // a room mute made through Easemob refuses the SDK's next message
  await em('POST', `/chatrooms/${id}/mute`, { usernames: [b], mute_duration: -1 });
  await assert.rejects(room.send(new TextMessage('muted in the room')), { code: 4315 });
  // removed through Easemob, bob is out of the room
  await em('DELETE', `/chatrooms/${id}/mute/${b}`);
  await em('DELETE', `/chatrooms/${id}/users/${b}`);
  const after = await em('GET', `/chatrooms/${id}/users`);
  assert.deepEqual(after.data, [{ owner: a }]);
});
