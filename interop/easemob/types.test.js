'use strict';
// Every message type of the official Easemob web SDK (easemob-websdk 4.21.1), unmodified, both ways
// between two users, and across SDKs (agora-chat 1.4.0): txt, img, audio, video, file (uploaded
// through the SDK's own `file` option: POST /chatfiles), loc, custom, cmd and combine, each judged
// by the receiver's callback (onTextMessage, onImageMessage, …) and the fields an app reads from it,
// attachments downloaded by their URL as a browser would (no Authorization, the share-secret in the
// query) and compared byte for byte (specs/easemob-msync.md §8.2, §8.4, §9).
const { test } = require('node:test');
const assert = require('node:assert/strict');
const https = require('node:https');
const em = require('./sdk');

let srv;
em.suite((s) => (srv = s));

// a 1×1 PNG, and a few distinct payloads per attachment kind (each message uploads its own)
const PNG = Buffer.from(
  '89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082',
  'hex',
);
const payload = (what, n = 3000) => Buffer.from(`${what} ${'0123456789'.repeat(Math.ceil(n / 10))}`.slice(0, n));

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

/** The SDK's `file` option for `bytes` named `filename` of MIME type `mime`. */
function fileOption(bytes, filename, mime) {
  return { data: new File([bytes], filename, { type: mime }), filename, filetype: filename.split('.').pop(), url: '' };
}

/**
 * `sender` sends a message of `fields` (`type`, the content fields; `chatType` defaults to
 * singleChat) to `to`; the receiver's `event` for it (matched by the server id the sender was
 * given) is judged for what every message has. Resolves `{sent, got, uploaded}`.
 */
async function roundTrip(sender, receiver, to, event, fields) {
  const chatType = fields.chatType || 'singleChat';
  let uploaded;
  const message = sender.create({ chatType, to, ...fields, onFileUploadComplete: (r) => (uploaded = r) });
  const sent = await em.within(sender.conn.send(message), 20000, `the ${fields.type} message`);
  assert.ok(sent && /^\d+$/.test(String(sent.serverMsgId)), `a server id: ${JSON.stringify(sent)}`);
  const got = await receiver.seen(event, (m) => m.id === sent.serverMsgId);
  assert.equal(got.type, fields.type);
  assert.equal(got.from, sender.user);
  assert.equal(got.to, to);
  assert.equal(got.chatType, chatType);
  assert.ok(Number(got.time) > 0, `a time: ${got.time}`);
  return { sent, got, uploaded };
}

/**
 * GET `url` with no Authorization header, as an <img src> would (or with `headers`, as the SDK's
 * download calls send the share-secret); resolves `[status, bytes]`.
 */
function download(url, headers = {}) {
  return new Promise((resolve, reject) => {
    https
      .get(url, { headers }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve([res.statusCode, Buffer.concat(chunks)]));
      })
      .on('error', reject);
  });
}

/** A received attachment: confab's URL with the share-secret, its length, the same bytes. */
async function assertAttachment(got, bytes) {
  const base = `https://127.0.0.1:${srv.port}/${srv.app.easemob.org_name}/${srv.app.easemob.app_name}/chatfiles/`;
  assert.ok(got.url.startsWith(base) && got.url.includes(`share-secret=${got.secret}`), `the receiver's URL: ${got.url}`);
  assert.ok(got.secret, 'a share secret');
  assert.equal(Number(got.file_length), bytes.length, 'file_length');
  const [status, body] = await download(got.url);
  assert.equal(status, 200, `download of ${got.url}`);
  assert.ok(body.equals(bytes), `the same ${bytes.length} bytes (got ${body.length})`);
}

/** The messages of one type, sent alice → bob then bob → alice, each judged by `check(got, fields)`. */
async function bothWays(event, makeFields, check) {
  const {
    names: [a, b],
    clients: [alice, bob],
  } = await users('alice', 'bob');
  for (const [sender, receiver, to, tag] of [
    [alice, bob, b, 'to bob'],
    [bob, alice, a, 'to alice'],
  ]) {
    const fields = makeFields(tag);
    const { got } = await roundTrip(sender, receiver, to, event, fields);
    await check(got, fields, tag);
  }
  // nothing came back to the senders but the other's message
  for (const c of [alice, bob]) {
    assert.equal(c.events.filter(([e]) => e === event).length, 1, `${c.user} got one ${event}: the other's`);
  }
}

test('txt both ways: onTextMessage with the text and ext', async () => {
  await em.requireMsync(srv);
  await bothWays(
    'onTextMessage',
    (tag) => ({ type: 'txt', msg: `hello ${tag} ✓`, ext: { tag, n: 7, ok: true, obj: { deep: [1, 2] } } }),
    (got, f) => {
      assert.equal(got.msg, f.msg);
      assert.deepEqual(got.ext, { tag: f.ext.tag, n: 7, ok: true, obj: { deep: [1, 2] } });
    },
  );
});

test('img both ways: uploaded by the SDK, onImageMessage with url, width/height, thumb and the same bytes', async () => {
  await em.requireMsync(srv);
  await bothWays(
    'onImageMessage',
    (tag) => ({ type: 'img', file: fileOption(Buffer.concat([PNG, Buffer.from(tag)]), 'pic.png', 'image/png'), width: 640, height: 480, ext: { caption: tag } }),
    async (got, f) => {
      assert.equal(got.width, 640);
      assert.equal(got.height, 480);
      assert.deepEqual(got.ext, f.ext);
      const bytes = Buffer.from(await f.file.data.arrayBuffer());
      await assertAttachment(got, bytes);
      // the thumbnail URL the SDK gives the app is served too (confab answers the original)
      assert.ok(got.thumb.startsWith(got.url) && got.thumb.endsWith('&thumbnail=true'), `thumb: ${got.thumb}`);
      const [status, thumb] = await download(got.thumb);
      assert.equal(status, 200);
      assert.ok(thumb.equals(bytes));
    },
  );
});

test('audio both ways: onAudioMessage with filename, length (seconds), the same bytes', async () => {
  await em.requireMsync(srv);
  await bothWays(
    'onAudioMessage',
    (tag) => ({ type: 'audio', file: fileOption(payload(`voice ${tag}`, 4000), 'voice.amr', 'audio/amr'), filename: 'voice.amr', length: 7 }),
    async (got, f) => {
      assert.equal(got.filename, 'voice.amr');
      assert.equal(Number(got.length), 7);
      await assertAttachment(got, Buffer.from(await f.file.data.arrayBuffer()));
    },
  );
});

test('video both ways: onVideoMessage with filename, length, the thumbnail URL the SDK made, the same bytes', async () => {
  await em.requireMsync(srv);
  await bothWays(
    'onVideoMessage',
    (tag) => ({ type: 'video', file: fileOption(payload(`video ${tag}`, 9000), 'clip.mp4', 'video/mp4'), filename: 'clip.mp4', length: 12 }),
    async (got, f) => {
      assert.equal(got.filename, 'clip.mp4');
      assert.equal(Number(got.length), 12);
      await assertAttachment(got, Buffer.from(await f.file.data.arrayBuffer()));
      // the sender's SDK names a server-made first frame (`…?vframe=true`); the receiver reads it back
      const path = new URL(got.url).pathname;
      assert.ok(got.thumb && new URL(got.thumb).pathname === path && got.thumb.includes('vframe=true'), `thumb: ${got.thumb}`);
      assert.equal(got.thumb_secret, got.secret);
      // the first frame, fetched with its secret (confab makes none: it answers the file)
      const [status, thumb] = await download(got.thumb, { 'share-secret': got.thumb_secret });
      assert.equal(status, 200, `GET ${got.thumb}`);
      assert.ok(thumb.length > 0);
    },
  );
});

test('file both ways: onFileMessage with filename and the same bytes', async () => {
  await em.requireMsync(srv);
  await bothWays(
    'onFileMessage',
    (tag) => ({ type: 'file', file: fileOption(payload(`report ${tag}`, 5000), 'report.pdf', 'application/pdf'), filename: 'report.pdf' }),
    async (got, f) => {
      assert.equal(got.filename, 'report.pdf');
      await assertAttachment(got, Buffer.from(await f.file.data.arrayBuffer()));
    },
  );
});

test('loc both ways: onLocationMessage with lat, lng, addr and buildingName', async () => {
  await em.requireMsync(srv);
  await bothWays(
    'onLocationMessage',
    (tag) => ({ type: 'loc', lat: tag === 'to bob' ? 39.9042 : -33.8688, lng: tag === 'to bob' ? 116.4074 : 151.2093, addr: `1 Main St (${tag})`, buildingName: 'Tower B' }),
    (got, f) => {
      assert.equal(got.lat, f.lat);
      assert.equal(got.lng, f.lng);
      assert.equal(got.addr, f.addr);
      assert.equal(got.buildingName, 'Tower B');
    },
  );
});

test('custom both ways: onCustomMessage with customEvent and customExts (strings, numbers, booleans)', async () => {
  await em.requireMsync(srv);
  await bothWays(
    'onCustomMessage',
    (tag) => ({ type: 'custom', customEvent: 'gift', customExts: { kind: 'rose', count: 3, to: tag, price: 9.5, wrapped: true }, ext: { k: 'v' } }),
    (got, f) => {
      assert.equal(got.customEvent, 'gift');
      assert.deepEqual(got.customExts, f.customExts);
      assert.deepEqual(got.ext, { k: 'v' });
    },
  );
});

test('cmd both ways: onCmdMessage with the action (and ext), and not in onMessage', async () => {
  await em.requireMsync(srv);
  const {
    names: [a, b],
    clients: [alice, bob],
  } = await users('alice', 'bob');
  for (const [sender, receiver, to] of [
    [alice, bob, b],
    [bob, alice, a],
  ]) {
    const { got } = await roundTrip(sender, receiver, to, 'onCmdMessage', { type: 'cmd', action: `typing:${to}`, ext: { since: 3 } });
    assert.equal(got.action, `typing:${to}`);
    assert.deepEqual(got.ext, { since: 3 });
  }
  for (const c of [alice, bob]) {
    const batched = c.events.filter(([e]) => e === 'onMessage').flatMap(([, list]) => list);
    assert.ok(!batched.some((m) => m.type === 'cmd'), 'cmd messages are not in onMessage (the SDK leaves them out)');
  }
});

test('combine: the SDK uploads the merged messages, the peer gets onCombineMessage (title, summary, compatibleText) and the same file', async () => {
  await em.requireMsync(srv);
  const {
    names: [a, b],
    clients: [alice, bob],
  } = await users('alice', 'bob');
  // two messages alice received, merged and forwarded to bob
  const carol = (await users('carol')).clients[0];
  const t = await roundTrip(carol, alice, a, 'onTextMessage', { type: 'txt', msg: 'the first' });
  const l = await roundTrip(carol, alice, a, 'onLocationMessage', { type: 'loc', lat: 1.5, lng: 2.5, addr: 'here', buildingName: 'home' });
  let uploaded;
  const message = alice.create({
    type: 'combine',
    chatType: 'singleChat',
    to: b,
    compatibleText: '[chat history]',
    title: 'carol and alice',
    summary: 'carol: the first',
    messageList: [t.got, l.got],
    onFileUploadComplete: (r) => (uploaded = r),
  });
  const sent = await em.within(alice.conn.send(message), 20000, 'the combine message');
  const got = await bob.seen('onCombineMessage', (m) => m.id === sent.serverMsgId);
  assert.equal(got.from, a);
  assert.equal(got.to, b);
  assert.equal(got.title, 'carol and alice');
  assert.equal(got.summary, 'carol: the first');
  assert.equal(got.compatibleText, '[chat history]');
  assert.equal(got.combineLevel, 1);
  assert.ok(uploaded !== undefined || got.url, 'the merged messages were uploaded');
  // the file is the SDK's: "cm", then each message as a length-prefixed Meta, then a check byte
  const [status, file] = await download(got.url);
  assert.equal(status, 200);
  assert.equal(Number(got.file_length), file.length);
  assert.equal(file.subarray(0, 2).toString(), 'cm');
  let check = 0;
  for (let i = 2; i < file.length - 1; i++) if (i % 2 === 1) check ^= file[i];
  assert.equal(file[file.length - 1], check, 'the check byte');
  let at = 2;
  let metas = 0;
  while (at < file.length - 1) {
    at += 4 + file.readUInt32BE(at);
    metas += 1;
  }
  assert.equal(at, file.length - 1);
  assert.equal(metas, 2, 'two messages merged');
  // and the receiver's SDK opens it: the two messages as they were
  const merged = await em.within(bob.conn.downloadAndParseCombineMessage({ url: got.url, secret: got.secret }), 10000, 'downloadAndParseCombineMessage');
  assert.deepEqual(
    merged.map((m) => [m.type, m.id, m.from]),
    [
      ['txt', t.got.id, carol.user],
      ['loc', l.got.id, carol.user],
    ],
  );
  assert.equal(merged[0].msg, 'the first');
  assert.deepEqual([merged[1].lat, merged[1].lng, merged[1].addr, merged[1].buildingName], [1.5, 2.5, 'here', 'home']);
});

test('a group gets non-text types: img and custom from one member reach the others, not the sender', async () => {
  await em.requireMsync(srv);
  const {
    names: [a, b, c],
    clients: [alice, bob, carol],
  } = await users('alice', 'bob', 'carol');
  const g = await em.rest200(srv, 'POST', '/chatgroups', { groupname: 'media', desc: 'd', public: true, owner: a, members: [b, c] });
  const gid = g.data.groupid;
  const bytes = Buffer.concat([PNG, Buffer.from('group')]);
  const img = await em.within(
    alice.conn.send(alice.create({ type: 'img', chatType: 'groupChat', to: gid, file: fileOption(bytes, 'team.png', 'image/png'), width: 10, height: 20 })),
    20000,
    'the group image',
  );
  for (const member of [bob, carol]) {
    const got = await member.seen('onImageMessage', (m) => m.id === img.serverMsgId);
    assert.equal(got.chatType, 'groupChat');
    assert.equal(got.from, a);
    assert.equal(got.to, gid);
    assert.equal(got.width, 10);
    assert.equal(got.height, 20);
    await assertAttachment(got, bytes);
  }
  const { got } = await roundTrip(bob, carol, gid, 'onCustomMessage', { type: 'custom', chatType: 'groupChat', customEvent: 'poll', customExts: { q: 'lunch?' } });
  assert.deepEqual(got.customExts, { q: 'lunch?' });
  await alice.seen('onCustomMessage', (m) => m.id === got.id);
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(!alice.events.some(([e]) => e === 'onImageMessage'), 'the sender does not get its own image back');
  assert.ok(!bob.events.some(([e]) => e === 'onCustomMessage'), 'nor its own custom message');
});

test('agora-chat 1.4.0 → easemob-websdk 4.21.1: text and an uploaded image; and an image back', async () => {
  await em.requireMsync(srv);
  const {
    names: [a, b],
    clients: [alice, bob],
  } = await users({ name: 'alice', options: { sdk: 'agora' } }, 'bob');
  const text = await roundTrip(alice, bob, b, 'onTextMessage', { type: 'txt', msg: 'from agora-chat', ext: { v: 1 } });
  assert.equal(text.got.msg, 'from agora-chat');
  assert.deepEqual(text.got.ext, { v: 1 });
  const toBob = Buffer.concat([PNG, Buffer.from('agora')]);
  const img = await roundTrip(alice, bob, b, 'onImageMessage', { type: 'img', file: fileOption(toBob, 'a.png', 'image/png'), width: 32, height: 16 });
  assert.equal(img.got.width, 32);
  assert.equal(img.got.height, 16);
  await assertAttachment(img.got, toBob);
  const toAlice = Buffer.concat([PNG, Buffer.from('easemob')]);
  const back = await roundTrip(bob, alice, a, 'onImageMessage', { type: 'img', file: fileOption(toAlice, 'e.png', 'image/png'), width: 8, height: 4 });
  assert.equal(back.got.width, 8);
  assert.equal(back.got.height, 4);
  await assertAttachment(back.got, toAlice);
});

/** A file uploaded over the Easemob REST face (app token): `{url, secret}`. */
async function restUpload(bytes, filename, mime) {
  const em_ = srv.app.easemob;
  const base = `https://127.0.0.1:${srv.port}/${em_.org_name}/${em_.app_name}`;
  await em.rest200(srv, 'GET', '/users?limit=1'); // the app token, fetched once
  const form = new FormData();
  form.append('file', new File([bytes], filename, { type: mime }));
  const r = await fetch(`${base}/chatfiles`, { method: 'POST', body: form, headers: { Authorization: `Bearer ${srv.easemobAppToken}`, 'restrict-access': 'true' } });
  const body = await r.json();
  assert.equal(r.status, 200, JSON.stringify(body));
  return { url: `${base}/chatfiles/${body.entities[0].uuid}`, secret: body.entities[0]['share-secret'] };
}

test('every type sent by the app server (Easemob REST /messages/users) reaches the SDK with the fields it reads', async () => {
  await em.requireMsync(srv);
  const {
    names: [b],
    clients: [bob],
  } = await users('bob');
  const a = em.uname('server_side');
  await em.register(srv, a);
  const send = async (type, body, ext) => {
    const r = await em.rest200(srv, 'POST', '/messages/users', { from: a, to: [b], type, body, ...(ext ? { ext } : {}) });
    return r.data[b];
  };
  const imgBytes = Buffer.concat([PNG, Buffer.from('rest')]);
  const img = await restUpload(imgBytes, 'r.png', 'image/png');
  const audioBytes = payload('rest voice', 1500);
  const audio = await restUpload(audioBytes, 'r.amr', 'audio/amr');
  const videoBytes = payload('rest video', 2500);
  const video = await restUpload(videoBytes, 'r.mp4', 'video/mp4');
  const fileBytes = payload('rest file', 1200);
  const file = await restUpload(fileBytes, 'r.pdf', 'application/pdf');

  const ids = {
    txt: await send('txt', { msg: 'from the server' }, { k: 'v', n: 1 }),
    img: await send('img', { filename: 'r.png', secret: img.secret, url: img.url, size: { width: 48, height: 36 } }),
    audio: await send('audio', { filename: 'r.amr', secret: audio.secret, url: audio.url, length: 9 }),
    video: await send('video', { filename: 'r.mp4', secret: video.secret, url: video.url, length: 15, file_length: videoBytes.length, thumb: video.url, thumb_secret: video.secret }),
    file: await send('file', { filename: 'r.pdf', secret: file.secret, url: file.url }),
    loc: await send('loc', { lat: '39.9', lng: '116.3', addr: 'Haidian' }),
    cmd: await send('cmd', { action: 'refresh' }),
    custom: await send('custom', { customEvent: 'card', customExts: { title: 't', body: 'b' } }),
  };
  const of = (event, type) => bob.seen(event, (m) => m.id === ids[type]);
  const txt = await of('onTextMessage', 'txt');
  assert.equal(txt.msg, 'from the server');
  assert.deepEqual(txt.ext, { k: 'v', n: 1 });
  const gotImg = await of('onImageMessage', 'img');
  assert.equal(gotImg.from, a);
  assert.equal(gotImg.width, 48);
  assert.equal(gotImg.height, 36);
  const [s1, b1] = await download(gotImg.url);
  assert.equal(s1, 200, gotImg.url);
  assert.ok(b1.equals(imgBytes));
  const gotAudio = await of('onAudioMessage', 'audio');
  assert.equal(gotAudio.filename, 'r.amr');
  assert.equal(Number(gotAudio.length), 9);
  const [s2, b2] = await download(gotAudio.url);
  assert.equal(s2, 200, gotAudio.url);
  assert.ok(b2.equals(audioBytes));
  const gotVideo = await of('onVideoMessage', 'video');
  assert.equal(gotVideo.filename, 'r.mp4');
  assert.equal(Number(gotVideo.length), 15);
  assert.equal(Number(gotVideo.file_length), videoBytes.length);
  const [s3, b3] = await download(gotVideo.url);
  assert.equal(s3, 200, gotVideo.url);
  assert.ok(b3.equals(videoBytes));
  const gotFile = await of('onFileMessage', 'file');
  assert.equal(gotFile.filename, 'r.pdf');
  const [s4, b4] = await download(gotFile.url);
  assert.equal(s4, 200, gotFile.url);
  assert.ok(b4.equals(fileBytes));
  const loc = await of('onLocationMessage', 'loc');
  assert.equal(Number(loc.lat), 39.9);
  assert.equal(Number(loc.lng), 116.3);
  assert.equal(loc.addr, 'Haidian');
  assert.equal((await of('onCmdMessage', 'cmd')).action, 'refresh');
  const custom = await of('onCustomMessage', 'custom');
  assert.equal(custom.customEvent, 'card');
  assert.deepEqual(custom.customExts, { title: 't', body: 'b' });
});
