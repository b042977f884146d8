'use strict';
// Logging in and out with the official Easemob web SDK (easemob-websdk 4.21.1), unmodified, judged
// by what the SDK itself reports: open()'s promise, onConnected / onError / onDisconnected, and
// the error types of specs/easemob-msync.md §4.
// The msync side is confab-face-easemob's gateway at /websocket.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { eventually } = require('../lib/harness');
const em = require('./sdk');

let srv;
em.suite((s) => (srv = s));

test('a wrong password is refused at the token call, as the SDK reports it (type 1, "invalid password")', async () => {
  const a = em.uname('alice');
  await em.register(srv, a);
  const c = new em.Client(srv);
  const err = await c.open({ user: a, pwd: 'not-the-password' }).then(
    () => assert.fail('open() resolved with a wrong password'),
    (e) => e,
  );
  assert.equal(err.type, em.sdk().statusCode.WEBIM_CONNCTION_OPEN_ERROR, JSON.stringify(err));
  assert.equal(err.message, 'invalid password');
  assert.equal(err.data.extraInfo.httpCode, 400);
  assert.equal(c.isOpened(), false);
  assert.ok(!c.events.some(([e]) => e === 'onConnected'), 'no onConnected');
});

test('an unknown user is refused at the token call (type 1, "user not found", inner type USER_NOT_FOUND)', async () => {
  const c = new em.Client(srv);
  const err = await c.open({ user: em.uname('nobody'), pwd: em.PASSWORD }).then(
    () => assert.fail('open() resolved for a user that does not exist'),
    (e) => e,
  );
  const { statusCode } = em.sdk();
  assert.equal(err.type, statusCode.WEBIM_CONNCTION_OPEN_ERROR, JSON.stringify(err));
  assert.equal(err.message, 'user not found');
  assert.equal(err.data.type, statusCode.USER_NOT_FOUND);
});

test('login with a password: open() resolves the token, onConnected, the token works on REST', async () => {
  await em.requireMsync(srv);
  const a = em.uname('alice');
  await em.register(srv, a);
  const c = new em.Client(srv);
  const connected = c.nextEvent('onConnected');
  const res = await c.open({ user: a, pwd: em.PASSWORD });
  await connected;
  assert.equal(c.isOpened(), true);
  assert.equal(typeof res.accessToken, 'string');
  assert.ok(res.accessToken.length > 0);
  assert.ok(Number(res.duration) > 0, `a lifetime: ${JSON.stringify(res)}`);
  // the token the SDK got is the user's own on the REST face
  const r = await em.rest(srv, 'PUT', `/users/${a}`, { nickname: 'Alice' }, { token: res.accessToken });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.ok(!c.events.some(([e]) => e === 'onError'), `no onError: ${JSON.stringify(c.events)}`);
});

test('login with a token (issued by REST): onConnected, no REST call made by the SDK', async () => {
  await em.requireMsync(srv);
  const a = em.uname('alice');
  await em.register(srv, a);
  const token = await em.userToken(srv, a);
  const c = new em.Client(srv);
  const connected = c.nextEvent('onConnected');
  await c.open({ user: a, accessToken: token });
  await connected;
  assert.equal(c.isOpened(), true);
});

test('a token confab did not issue is refused at PROVISION (type 28, INVALID_TOKEN), with onError', async () => {
  await em.requireMsync(srv);
  const a = em.uname('alice');
  await em.register(srv, a);
  const c = new em.Client(srv);
  const onError = c.nextEvent('onError');
  const err = await c.open({ user: a, accessToken: 'YWMt-not-a-confab-token' }).then(
    () => assert.fail('open() resolved with a forged token'),
    (e) => e,
  );
  assert.equal(err.type, em.sdk().statusCode.WEBIM_CONNCTION_TOKEN_NOT_ASSIGN_ERROR, JSON.stringify(err));
  assert.equal((await onError).type, err.type);
  // the SDK leaves the socket to the server, which closes it after a refusal
  await eventually(() => !c.isOpened(), 3000);
  assert.ok(!c.events.some(([e]) => e === 'onConnected'), 'no onConnected');
});

test("another user's token is refused at PROVISION (type 28)", async () => {
  await em.requireMsync(srv);
  const a = em.uname('alice');
  const b = em.uname('bob');
  await em.register(srv, a, b);
  const bobs = await em.userToken(srv, b);
  const c = new em.Client(srv);
  const err = await c.open({ user: a, accessToken: bobs }).then(
    () => assert.fail("open() resolved with bob's token for alice"),
    (e) => e,
  );
  assert.equal(err.type, em.sdk().statusCode.WEBIM_CONNCTION_TOKEN_NOT_ASSIGN_ERROR, JSON.stringify(err));
  await eventually(() => !c.isOpened(), 3000);
  assert.ok(!c.events.some(([e]) => e === 'onConnected'), 'no onConnected');
});

test('logout: close() ends the session (onDisconnected, no reconnect); a message sent meanwhile waits for the next login', async () => {
  await em.requireMsync(srv);
  const a = em.uname('alice');
  const b = em.uname('bob');
  await em.register(srv, a, b);
  const alice = await em.connect(srv, { user: a, pwd: em.PASSWORD });
  const bob = await em.connect(srv, { user: b, pwd: em.PASSWORD }, { deviceId: 'bobs-laptop' });
  const status = async () => (await em.rest200(srv, 'GET', `/users/${b}/status`)).data[b];
  assert.equal(await status(), 'online', 'the REST face sees the SDK session');
  const gone = bob.nextEvent('onDisconnected');
  bob.close();
  await gone;
  assert.equal(bob.isOpened(), false);
  // the REST face sees bob offline (once the server has seen the socket close)
  await eventually(async () => (await status()) === 'offline', 3000);
  await alice.sendText(b, 'after you left');
  await new Promise((r) => setTimeout(r, 1500));
  assert.ok(!bob.events.some(([e]) => e === 'onReconnecting'), 'a closed client does not reconnect');
  assert.equal(bob.texts.length, 0, 'nothing reaches a logged-out client');
  const again = await em.connect(srv, { user: b, pwd: em.PASSWORD }, { deviceId: 'bobs-laptop' });
  const got = await again.nextText('after you left');
  assert.equal(got.from, a);
});

test('agora-chat 1.4.0 logs in with a password and with a token', async () => {
  await em.requireMsync(srv);
  const a = em.uname('alice');
  await em.register(srv, a);
  const withPwd = new em.Client(srv, { sdk: 'agora' });
  const connected = withPwd.nextEvent('onConnected');
  const res = await withPwd.open({ user: a, pwd: em.PASSWORD });
  await connected;
  assert.equal(withPwd.isOpened(), true);
  assert.equal(typeof res.accessToken, 'string');
  withPwd.close();
  const withToken = new em.Client(srv, { sdk: 'agora' });
  await withToken.open({ user: a, accessToken: await em.userToken(srv, a) });
  assert.equal(withToken.isOpened(), true);
});

test('agora-chat 1.4.0: a wrong password is refused as the SDK reports it', async () => {
  const a = em.uname('alice');
  await em.register(srv, a);
  const c = new em.Client(srv, { sdk: 'agora' });
  const err = await c.open({ user: a, pwd: 'not-the-password' }).then(
    () => assert.fail('open() resolved with a wrong password'),
    (e) => e,
  );
  assert.equal(err.type, em.sdk('agora').statusCode.WEBIM_CONNCTION_OPEN_ERROR, JSON.stringify(err));
  assert.equal(err.message, 'invalid password');
});
