'use strict';
// One engine, two official SDKs on one server: LeanCloud's `leancloud-realtime` (4.3.1, as
// interop/tests use it) and the Easemob web SDK (easemob-websdk 4.21.1), both unmodified, in the
// same app. A LeanCloud client id is the Easemob username; the pair's unique conversation is the
// Easemob one-to-one chat; an Easemob group's id is the LeanCloud conversation id (docs/easemob.md,
// "One engine"). Messages go both ways, one-to-one and in a group, judged by each SDK's own events
// (Event.MESSAGE with a TextMessage; onTextMessage, onImageMessage, onLocationMessage).
const { test } = require('node:test');
const assert = require('node:assert/strict');
const https = require('node:https');
const { Event, TextMessage, TypedMessage, messageType, messageField } = require('leancloud-realtime');
const { next } = require('../lib/harness');
const em = require('./sdk');

// LeanCloud's image, audio, video, location and file messages (the typed-messages plugin's
// `_lctype` -2, -3, -4, -5, -6), as an app declares them
class LcImage extends TypedMessage {}
messageType(-2)(LcImage);
messageField(['_lcfile'])(LcImage);
class LcLocation extends TypedMessage {}
messageType(-5)(LcLocation);
messageField(['_lcloc'])(LcLocation);
class LcAudio extends TypedMessage {}
messageType(-3)(LcAudio);
messageField(['_lcfile'])(LcAudio);
class LcVideo extends TypedMessage {}
messageType(-4)(LcVideo);
messageField(['_lcfile'])(LcVideo);
class LcFile extends TypedMessage {}
messageType(-6)(LcFile);
messageField(['_lcfile'])(LcFile);

let srv;
const lcClients = [];
em.suite((s) => (srv = s), {
  afterEachTest: async () => {
    for (const c of lcClients.splice(0)) await c.close().catch(() => {});
  },
});

/** GET `url` with no credentials; resolves `[status, bytes]`. */
function download(url) {
  return new Promise((resolve, reject) => {
    https
      .get(url, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve([res.statusCode, Buffer.concat(chunks)]));
      })
      .on('error', reject);
  });
}

/** `name` logged in with leancloud-realtime (its client id is the Easemob username). */
async function leancloud(name) {
  const rt = srv.realtime();
  rt.register([LcImage, LcLocation, LcAudio, LcVideo, LcFile]);
  const client = await rt.createIMClient(name);
  lcClients.push(client);
  return client;
}

/** The next LeanCloud message whose conversation and test pass, as `[message, conversation]`. */
function lcMessage(client, pred, ms = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off(Event.MESSAGE, on);
      reject(new Error(`no LeanCloud message within ${ms} ms`));
    }, ms);
    const on = (message, conversation) => {
      if (!pred(message, conversation)) return;
      clearTimeout(timer);
      client.off(Event.MESSAGE, on);
      resolve([message, conversation]);
    };
    client.on(Event.MESSAGE, on);
  });
}

test('one-to-one: a LeanCloud SDK text reaches the Easemob SDK (onTextMessage), the answer reaches LeanCloud as a TextMessage in the same conversation', async () => {
  await em.requireMsync(srv);
  const a = em.uname('alice');
  const b = em.uname('bob');
  await em.register(srv, a, b);
  const alice = await leancloud(a);
  const bob = await em.connect(srv, { user: b, pwd: em.PASSWORD });

  const conv = await alice.createConversation({ members: [b], unique: true, name: 'pair' });
  const text = new TextMessage('hello from leancloud ✓');
  text.setAttributes({ mood: 'happy', n: 2 });
  const sent = await conv.send(text);
  const got = await bob.nextText('hello from leancloud ✓');
  assert.equal(got.from, a);
  assert.equal(got.to, b);
  assert.equal(got.chatType, 'singleChat');
  assert.equal(got.id, sent.id, 'the Easemob SDK sees the LeanCloud message id');
  assert.deepEqual(got.ext, { mood: 'happy', n: 2 }, "the LeanCloud message's attributes are the Easemob ext");

  const reply = lcMessage(alice, (m) => m instanceof TextMessage && m.text === 'hello from easemob');
  const back = await bob.sendText(a, 'hello from easemob', { ext: { k: 'v' } });
  const [m, c] = await reply;
  assert.equal(m.from, b);
  assert.equal(m.id, back.serverMsgId, 'LeanCloud sees the id the Easemob sender was given');
  assert.equal(c.id, conv.id, 'the unique conversation of the pair');
  // and the Easemob side of the pair heard nothing of its own
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(bob.texts.map((t) => t.msg), ['hello from leancloud ✓']);
});

test('LeanCloud image and location messages reach the Easemob SDK as onImageMessage and onLocationMessage', async () => {
  await em.requireMsync(srv);
  const a = em.uname('alice');
  const b = em.uname('bob');
  await em.register(srv, a, b);
  const alice = await leancloud(a);
  const bob = await em.connect(srv, { user: b, pwd: em.PASSWORD });
  const conv = await alice.createConversation({ members: [b], unique: true });

  const img = new LcImage();
  img._lcfile = { url: `https://127.0.0.1:${srv.port}/files/cat.png`, objId: 'f1', metaData: { name: 'cat.png', width: 320, height: 200, size: 1234, format: 'png' } };
  img.setText('a cat');
  const sentImg = await conv.send(img);
  const gotImg = await bob.seen('onImageMessage', (x) => x.id === sentImg.id);
  assert.equal(gotImg.from, a);
  assert.equal(gotImg.width, 320);
  assert.equal(gotImg.height, 200);
  assert.equal(Number(gotImg.file_length), 1234);
  assert.ok(new URL(gotImg.url).pathname.endsWith('/files/cat.png'), `the image URL: ${gotImg.url}`);

  const loc = new LcLocation();
  loc._lcloc = { latitude: 31.2304, longitude: 121.4737 };
  loc.setText('People’s Square');
  const sentLoc = await conv.send(loc);
  const gotLoc = await bob.seen('onLocationMessage', (x) => x.id === sentLoc.id);
  assert.equal(Number(gotLoc.lat), 31.2304);
  assert.equal(Number(gotLoc.lng), 121.4737);
  assert.equal(gotLoc.addr, 'People’s Square');
});

test('a group made with the Easemob SDK is the LeanCloud conversation of that id: texts both ways', async () => {
  await em.requireMsync(srv);
  const a = em.uname('alice');
  const b = em.uname('bob');
  const c = em.uname('carol');
  await em.register(srv, a, b, c);
  const alice = await leancloud(a);
  const bob = await em.connect(srv, { user: b, pwd: em.PASSWORD });
  const carol = await em.connect(srv, { user: c, pwd: em.PASSWORD });
  const r = await bob.conn.createGroupVNext({ groupName: 'both faces', description: 'd', members: [a, c], isPublic: true, needApprovalToJoin: false, allowMemberToInvite: true, inviteNeedConfirm: false, maxMemberCount: 50 });
  const gid = r.data.groupId;

  // the LeanCloud SDK sees the group as a conversation of that id, with the three members
  const conv = await alice.getConversation(gid);
  assert.ok(conv, `a LeanCloud conversation ${gid}`);
  assert.equal(conv.id, gid);
  assert.deepEqual(conv.members.slice().sort(), [a, b, c].sort());

  const sent = await conv.send(new TextMessage('hello group from leancloud'));
  for (const member of [bob, carol]) {
    const got = await member.nextText('hello group from leancloud');
    assert.equal(got.id, sent.id);
    assert.equal(got.from, a);
    assert.equal(got.to, gid);
    assert.equal(got.chatType, 'groupChat');
  }

  const toAlice = lcMessage(alice, (m) => m instanceof TextMessage && m.text === 'hello group from easemob');
  const back = await carol.sendText(gid, 'hello group from easemob', { chatType: 'groupChat' });
  const [m, inConv] = await toAlice;
  assert.equal(m.from, c);
  assert.equal(m.id, back.serverMsgId);
  assert.equal(inConv.id, gid, 'in the group conversation');
  assert.equal((await bob.nextText('hello group from easemob')).id, back.serverMsgId);
});

test('an Easemob SDK user offline gets a LeanCloud text at login (offline sync), a LeanCloud client offline gets an Easemob one at login', async () => {
  await em.requireMsync(srv);
  const a = em.uname('alice');
  const b = em.uname('bob');
  await em.register(srv, a, b);
  // alice (LeanCloud) writes to bob, offline
  const alice = await leancloud(a);
  const conv = await alice.createConversation({ members: [b], unique: true });
  const sent = await conv.send(new TextMessage('while you were away'));
  const bob = await em.connect(srv, { user: b, pwd: em.PASSWORD });
  const got = await bob.nextText('while you were away');
  assert.equal(got.id, sent.id);
  assert.equal(got.from, a);
  // alice goes offline; bob answers; alice logs in again and finds it (unread, then the message)
  await alice.close();
  lcClients.splice(lcClients.indexOf(alice), 1);
  const back = await bob.sendText(a, 'welcome back');
  const again = await leancloud(a);
  const [unread] = await next(again, Event.UNREAD_MESSAGES_COUNT_UPDATE, 10000);
  const entry = unread.find((x) => x.id === conv.id);
  assert.ok(entry && entry.unreadMessagesCount >= 1, `an unread count for the pair: ${JSON.stringify(unread.map((x) => [x.id, x.unreadMessagesCount]))}`);
  assert.equal(entry.lastMessage.id, back.serverMsgId);
  assert.ok(entry.lastMessage instanceof TextMessage);
  assert.equal(entry.lastMessage.text, 'welcome back');
});

test('Easemob SDK image and location messages reach LeanCloud as its image (-2) and location (-5) messages; the image downloads', async () => {
  await em.requireMsync(srv);
  const a = em.uname('alice');
  const b = em.uname('bob');
  await em.register(srv, a, b);
  const alice = await leancloud(a);
  const bob = await em.connect(srv, { user: b, pwd: em.PASSWORD });
  const bytes = Buffer.from(`an image for leancloud ${'x'.repeat(500)}`);
  const gotImg = lcMessage(alice, (m) => m instanceof LcImage);
  const img = await em.within(
    bob.conn.send(bob.create({ type: 'img', chatType: 'singleChat', to: a, file: { data: new File([bytes], 'dog.png', { type: 'image/png' }), filename: 'dog.png', filetype: 'png', url: '' }, width: 64, height: 48 })),
    20000,
    'the image',
  );
  const [m] = await gotImg;
  assert.equal(m.id, img.serverMsgId);
  assert.equal(m.from, b);
  assert.equal(m._lcfile.metaData.name, 'dog.png');
  assert.equal(m._lcfile.metaData.width, 64);
  assert.equal(m._lcfile.metaData.height, 48);
  assert.equal(m._lcfile.metaData.size, bytes.length);
  // a LeanCloud app shows the image by its URL, as it is (no Easemob share-secret to add)
  const [status, body] = await download(m._lcfile.url);
  assert.equal(status, 200, `GET ${m._lcfile.url}`);
  assert.ok(body.equals(bytes), 'the same bytes');
  const gotLoc = lcMessage(alice, (x) => x instanceof LcLocation);
  const loc = await bob.conn.send(bob.create({ type: 'loc', chatType: 'singleChat', to: a, lat: 22.5431, lng: 114.0579, addr: 'Shenzhen Bay', buildingName: 'Tower 2' }));
  const [l] = await gotLoc;
  assert.equal(l.id, loc.serverMsgId);
  assert.deepEqual(l._lcloc, { latitude: 22.5431, longitude: 114.0579 });
  assert.equal(l.text, 'Shenzhen Bay');
});

test('LeanCloud audio, video and file messages reach the Easemob SDK with filename, length and file_length', async () => {
  await em.requireMsync(srv);
  const a = em.uname('alice');
  const b = em.uname('bob');
  await em.register(srv, a, b);
  const alice = await leancloud(a);
  const bob = await em.connect(srv, { user: b, pwd: em.PASSWORD });
  const conv = await alice.createConversation({ members: [b], unique: true });
  const base = `https://127.0.0.1:${srv.port}/files`;
  const cases = [
    [LcAudio, 'onAudioMessage', { url: `${base}/v.mp3`, metaData: { name: 'v.mp3', size: 2048, duration: 6, format: 'mp3' } }],
    [LcVideo, 'onVideoMessage', { url: `${base}/m.mp4`, metaData: { name: 'm.mp4', size: 40960, duration: 11, format: 'mp4' } }],
    [LcFile, 'onFileMessage', { url: `${base}/d.pdf`, metaData: { name: 'd.pdf', size: 777 } }],
  ];
  for (const [Type, event, file] of cases) {
    const m = new Type();
    m._lcfile = file;
    const sent = await conv.send(m);
    const got = await bob.seen(event, (x) => x.id === sent.id);
    assert.equal(got.from, a);
    assert.equal(got.filename, file.metaData.name, event);
    assert.equal(Number(got.file_length), file.metaData.size, `${event}: file_length`);
    if (file.metaData.duration !== undefined) assert.equal(Number(got.length), file.metaData.duration, `${event}: length`);
    assert.ok(new URL(got.url).pathname.endsWith(new URL(file.url).pathname), `${event}: ${got.url}`);
  }
});

test('Easemob SDK audio, video and file messages reach LeanCloud as its typed messages, with name, size, duration, and download', async () => {
  await em.requireMsync(srv);
  const a = em.uname('alice');
  const b = em.uname('bob');
  await em.register(srv, a, b);
  const alice = await leancloud(a);
  const bob = await em.connect(srv, { user: b, pwd: em.PASSWORD });
  const cases = [
    [LcAudio, { type: 'audio', filename: 'hi.amr', length: 4 }, 'audio/amr'],
    [LcVideo, { type: 'video', filename: 'hi.mp4', length: 13 }, 'video/mp4'],
    [LcFile, { type: 'file', filename: 'hi.pdf' }, 'application/pdf'],
  ];
  for (const [Type, fields, mime] of cases) {
    const bytes = Buffer.from(`${fields.type} for leancloud ${'z'.repeat(300)}`);
    const got = lcMessage(alice, (m) => m instanceof Type);
    const file = { data: new File([bytes], fields.filename, { type: mime }), filename: fields.filename, filetype: fields.filename.split('.')[1], url: '' };
    const sent = await em.within(bob.conn.send(bob.create({ chatType: 'singleChat', to: a, file, ...fields })), 20000, fields.type);
    const [m] = await got;
    assert.equal(m.id, sent.serverMsgId);
    assert.equal(m.from, b);
    const meta = m._lcfile.metaData;
    assert.equal(meta.name, fields.filename, fields.type);
    assert.equal(meta.size, bytes.length, `${fields.type}: size`);
    if (fields.length !== undefined) assert.equal(meta.duration, fields.length, `${fields.type}: duration`);
    const [status, body] = await download(m._lcfile.url);
    assert.equal(status, 200, `GET ${m._lcfile.url}`);
    assert.ok(body.equals(bytes), `${fields.type}: the same bytes`);
  }
});
