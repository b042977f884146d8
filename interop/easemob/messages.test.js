'use strict';
// Messages with the official Easemob web SDK (easemob-websdk 4.21.1) and agora-chat 1.4.0,
// unmodified, judged by the SDK's own answers and events: send()'s promise ({localMsgId,
// serverMsgId}), onTextMessage on the receiving side, onOfflineMessageSync* for queued messages.
// The msync side is confab-face-easemob's gateway at /websocket.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const https = require('node:https');
const em = require('./sdk');

let srv;
em.suite((s) => (srv = s));

/** Users registered with the common password, and each logged in (`options` per client). */
async function users(...specs) {
  const names = specs.map((s) => em.uname(typeof s === 'string' ? s : s.name));
  await em.register(srv, ...names);
  const clients = [];
  for (const [i, s] of specs.entries()) {
    const options = typeof s === 'string' ? {} : s.options || {};
    clients.push(await em.connect(srv, { user: names[i], pwd: em.PASSWORD }, options));
  }
  return { names, clients };
}

/** What a received text looks like to the SDK. */
function assertText(got, { id, from, to, msg, chatType = 'singleChat' }) {
  assert.equal(got.type, 'txt');
  assert.equal(got.msg, msg);
  assert.equal(got.from, from);
  assert.equal(got.to, to);
  assert.equal(got.chatType, chatType);
  if (id !== undefined) assert.equal(got.id, id, 'the receiver sees the id the sender was given');
  assert.ok(Number(got.time) > 0, `a time: ${got.time}`);
}

test('one-to-one text, both ways: send() resolves the server id, the peer gets onTextMessage with it', async () => {
  await em.requireMsync(srv);
  const {
    names: [a, b],
    clients: [alice, bob],
  } = await users('alice', 'bob');
  const sent = await alice.sendText(b, 'hello bob');
  assert.ok(sent.serverMsgId && /^\d+$/.test(String(sent.serverMsgId)), `a server id: ${JSON.stringify(sent)}`);
  assertText(await bob.nextText('hello bob'), { id: sent.serverMsgId, from: a, to: b, msg: 'hello bob' });
  const back = await bob.sendText(a, 'hello alice');
  assertText(await alice.nextText('hello alice'), { id: back.serverMsgId, from: b, to: a, msg: 'hello alice' });
  assert.notEqual(back.serverMsgId, sent.serverMsgId);
  // each side got the other's message once, and nothing of its own
  assert.deepEqual(alice.texts.map((t) => t.msg), ['hello alice']);
  assert.deepEqual(bob.texts.map((t) => t.msg), ['hello bob']);
});

test('a text with ext: the receiver reads the ext as sent', async () => {
  await em.requireMsync(srv);
  const {
    names: [, b],
    clients: [alice, bob],
  } = await users('alice', 'bob');
  await alice.sendText(b, 'with ext', { ext: { k: 'v', n: 3, ok: true } });
  const got = await bob.nextText('with ext');
  assert.deepEqual({ k: got.ext.k, n: got.ext.n, ok: got.ext.ok }, { k: 'v', n: 3, ok: true });
});

test('group text: every other member gets onTextMessage (chatType groupChat, to the group)', async () => {
  await em.requireMsync(srv);
  const {
    names: [a, b, c],
    clients: [alice, bob, carol],
  } = await users('alice', 'bob', 'carol');
  const g = await em.rest200(srv, 'POST', '/chatgroups', { groupname: 'team', desc: 'd', public: true, owner: a, members: [b, c] });
  const gid = g.data.groupid;
  const sent = await alice.sendText(gid, 'hello team', { chatType: 'groupChat' });
  for (const member of [bob, carol]) {
    assertText(await member.nextText('hello team'), { id: sent.serverMsgId, from: a, to: gid, msg: 'hello team', chatType: 'groupChat' });
  }
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(alice.texts.length, 0, 'the sender does not get its own group message back on the sending device');
  const reply = await carol.sendText(gid, 'hi alice', { chatType: 'groupChat' });
  assertText(await alice.nextText('hi alice'), { id: reply.serverMsgId, from: c, to: gid, msg: 'hi alice', chatType: 'groupChat' });
});

test('chat room: members join through the SDK (joinChatRoom), a room text reaches the others and not the sender; after leaving, nothing more', async () => {
  await em.requireMsync(srv);
  const {
    names: [a, b],
    clients: [alice, bob, carol],
  } = await users('alice', 'bob', 'carol');
  const room = await em.rest200(srv, 'POST', '/chatrooms', { name: 'lobby', description: 'd', maxusers: 100, owner: a });
  const rid = room.data.id;
  for (const member of [alice, bob, carol]) {
    await em.within(member.conn.joinChatRoom({ roomId: rid }), 15000, 'joinChatRoom');
  }
  const sent = await alice.sendText(rid, 'hello room', { chatType: 'chatRoom' });
  for (const member of [bob, carol]) {
    assertText(await member.nextText('hello room'), { id: sent.serverMsgId, from: a, to: rid, msg: 'hello room', chatType: 'chatRoom' });
  }
  await em.within(carol.conn.leaveChatRoom({ roomId: rid }), 15000, 'leaveChatRoom');
  await bob.sendText(rid, 'carol has left', { chatType: 'chatRoom' });
  assertText(await alice.nextText('carol has left'), { from: b, to: rid, msg: 'carol has left', chatType: 'chatRoom' });
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(!alice.texts.some((t) => t.msg === 'hello room'), 'the sender does not get its own room message back');
  assert.ok(!carol.texts.some((t) => t.msg === 'carol has left'), 'a member who left gets nothing more');
});

test('an Easemob REST send (app token) reaches the SDK user online', async () => {
  await em.requireMsync(srv);
  const {
    names: [b],
    clients: [bob],
  } = await users('bob');
  const a = em.uname('alice');
  await em.register(srv, a);
  const r = await em.rest200(srv, 'POST', '/messages/users', { from: a, to: [b], type: 'txt', body: { msg: 'from the server' } });
  assertText(await bob.nextText('from the server'), { id: r.data[b], from: a, to: b, msg: 'from the server' });
});

test('a LeanCloud REST send to the pair conversation reaches the Easemob SDK user', async () => {
  await em.requireMsync(srv);
  const {
    names: [b],
    clients: [bob],
  } = await users('bob');
  const a = em.uname('alice');
  await em.register(srv, a);
  // the pair's conversation, as LeanCloud sees it (an Easemob user is a LeanCloud client id)
  const conv = await srv.rest('POST', '/1.2/rtm/conversations', { m: [a, b], unique: true, name: 'pair' });
  assert.equal(conv.status, 200, JSON.stringify(conv.body));
  const text = JSON.stringify({ _lctype: -1, _lctext: 'from leancloud' });
  const sent = await srv.rest('POST', `/1.2/rtm/conversations/${conv.body.objectId}/messages`, { from_client: a, message: text });
  assert.equal(sent.status, 200, JSON.stringify(sent.body));
  const got = await bob.nextText('from leancloud');
  assert.equal(got.from, a);
  assert.equal(got.to, b);
  assert.equal(got.chatType, 'singleChat');
});

test('an offline user gets the message after logging in (onOfflineMessageSyncStart/Finish around it)', async () => {
  await em.requireMsync(srv);
  const {
    names: [a],
    clients: [alice],
  } = await users('alice');
  const b = em.uname('bob');
  await em.register(srv, b);
  const sent = await alice.sendText(b, 'while you were away');
  const second = await alice.sendText(b, 'and this too');
  const bob = new em.Client(srv, { deviceId: 'bobs-phone' });
  const syncStart = bob.nextEvent('onOfflineMessageSyncStart');
  const syncFinish = bob.nextEvent('onOfflineMessageSyncFinish');
  await bob.open({ user: b, pwd: em.PASSWORD });
  assertText(await bob.nextText('while you were away'), { id: sent.serverMsgId, from: a, to: b, msg: 'while you were away' });
  assertText(await bob.nextText('and this too'), { id: second.serverMsgId, from: a, to: b, msg: 'and this too' });
  await syncStart;
  await syncFinish;
  assert.deepEqual(bob.texts.map((t) => t.msg), ['while you were away', 'and this too'], 'in order, once each');
  // delivered once: the next login of the same device gets nothing again
  bob.close();
  const again = await em.connect(srv, { user: b, pwd: em.PASSWORD }, { deviceId: 'bobs-phone' });
  await new Promise((r) => setTimeout(r, 1000));
  assert.deepEqual(again.texts.map((t) => t.msg), [], 'no message is delivered twice');
});

test("multi-device: both of a user's devices receive, and the sender's other device gets a copy of what it sent", async () => {
  await em.requireMsync(srv);
  const a = em.uname('alice');
  const b = em.uname('bob');
  await em.register(srv, a, b);
  const laptop = await em.connect(srv, { user: a, pwd: em.PASSWORD }, { deviceId: 'alices-laptop' });
  const phone = await em.connect(srv, { user: a, pwd: em.PASSWORD }, { deviceId: 'alices-phone' });
  const bob = await em.connect(srv, { user: b, pwd: em.PASSWORD });
  const toBoth = await bob.sendText(a, 'to all of alice');
  for (const device of [laptop, phone]) {
    assertText(await device.nextText('to all of alice'), { id: toBoth.serverMsgId, from: b, to: a, msg: 'to all of alice' });
  }
  const fromLaptop = await laptop.sendText(b, 'sent from the laptop');
  assertText(await bob.nextText('sent from the laptop'), { id: fromLaptop.serverMsgId, from: a, to: b, msg: 'sent from the laptop' });
  assertText(await phone.nextText('sent from the laptop'), { id: fromLaptop.serverMsgId, from: a, to: b, msg: 'sent from the laptop' });
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(!laptop.texts.some((t) => t.msg === 'sent from the laptop'), 'the sending device does not get its own message back');
});

test('a file message: the SDK uploads it (POST /chatfiles, multipart), the peer gets onFileMessage and downloads the same bytes by its URL', async () => {
  await em.requireMsync(srv);
  const {
    names: [a, b],
    clients: [alice, bob],
  } = await users('alice', 'bob');
  const bytes = Buffer.from(`a file for bob ${'.'.repeat(2000)}`);
  let uploaded;
  const message = alice.create({
    type: 'file',
    chatType: 'singleChat',
    to: b,
    file: { data: new File([bytes], 'notes.txt', { type: 'text/plain' }), filename: 'notes.txt', filetype: 'txt', url: '' },
    filename: 'notes.txt',
    onFileUploadComplete: (res) => (uploaded = res),
  });
  const sent = await em.within(alice.conn.send(message), 20000, 'the file message');
  assert.ok(uploaded && uploaded.entities && uploaded.entities[0].uuid, `the upload's answer: ${JSON.stringify(uploaded)}`);
  const got = await bob.seen('onFileMessage');
  assert.equal(got.id, sent.serverMsgId);
  assert.equal(got.from, a);
  assert.equal(got.to, b);
  assert.equal(got.filename, 'notes.txt');
  assert.equal(Number(got.file_length), bytes.length);
  const base = `https://127.0.0.1:${srv.port}/${srv.app.easemob.org_name}/${srv.app.easemob.app_name}/chatfiles/`;
  assert.ok(got.url.startsWith(base) && got.url.includes('share-secret='), `the receiver's URL: ${got.url}`);
  // as an <img src> would: no Authorization header, the share-secret in the query
  const [status, body] = await new Promise((resolve, reject) => {
    https
      .get(got.url, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve([res.statusCode, Buffer.concat(chunks)]));
      })
      .on('error', reject);
  });
  assert.equal(status, 200);
  assert.ok(body.equals(bytes), 'the same bytes');
});

test('agora-chat 1.4.0 and easemob-websdk 4.21.1 exchange one-to-one texts', async () => {
  await em.requireMsync(srv);
  const {
    names: [a, b],
    clients: [alice, bob],
  } = await users({ name: 'alice', options: { sdk: 'agora' } }, 'bob');
  const sent = await alice.sendText(b, 'from agora-chat');
  assertText(await bob.nextText('from agora-chat'), { id: sent.serverMsgId, from: a, to: b, msg: 'from agora-chat' });
  const back = await bob.sendText(a, 'from easemob-websdk');
  assertText(await alice.nextText('from easemob-websdk'), { id: back.serverMsgId, from: b, to: a, msg: 'from easemob-websdk' });
});
