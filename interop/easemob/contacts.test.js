'use strict';
// Contacts with the official Easemob web SDK (easemob-websdk 4.21.1), unmodified, judged by the
// SDK's own events: addContact raises onContactInvited on the other side (also when that side
// was offline: it hears at login), acceptContactInvite onContactAgreed + onContactAdded for the
// asker and onContactAdded for the one who agreed, declineContactInvite onContactRefuse,
// deleteContact onContactDeleted; getContacts / getAllContacts and the blocklist calls resolve
// what the server keeps. The requests are confab-engine's (`social`), told as ROSTER metas.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const em = require('./sdk');

let srv;
em.suite((s) => (srv = s));

async function registered(...names) {
  const users = names.map((n) => em.uname(n));
  await em.register(srv, ...users);
  return users;
}

const login = (user) => em.connect(srv, { user, pwd: em.PASSWORD });

test('addContact → onContactInvited; acceptContactInvite → onContactAgreed and onContactAdded on both sides; both list the other', async () => {
  await em.requireMsync(srv);
  const [a, b] = await registered('alice', 'bob');
  const alice = await login(a);
  const bob = await login(b);
  await alice.conn.addContact(b, 'hello, I am alice');
  const invited = await bob.seen('onContactInvited');
  assert.deepEqual({ from: invited.from, to: invited.to, status: invited.status, type: invited.type }, { from: a, to: b, status: 'hello, I am alice', type: 'subscribe' });

  await bob.conn.acceptContactInvite(a);
  const agreed = await alice.seen('onContactAgreed');
  assert.deepEqual({ from: agreed.from, to: agreed.to, type: agreed.type }, { from: b, to: a, type: 'subscribed' });
  assert.equal((await alice.seen('onContactAdded')).from, b);
  assert.equal((await bob.seen('onContactAdded')).from, a);

  assert.deepEqual((await alice.conn.getContacts()).data, [b]);
  const all = await bob.conn.getAllContacts();
  assert.deepEqual(all.data, [{ userId: a, remark: '' }]);
});

test('a request made while the other is offline is heard at login; declineContactInvite → onContactRefuse', async () => {
  await em.requireMsync(srv);
  const [a, c] = await registered('alice', 'carol');
  const carol = await login(c);
  await carol.conn.addContact(a, 'are you there?');
  // alice logs in later: the waiting request reaches her SDK
  const alice = await login(a);
  const invited = await alice.seen('onContactInvited');
  assert.deepEqual({ from: invited.from, status: invited.status }, { from: c, status: 'are you there?' });
  await alice.conn.declineContactInvite(c);
  const refused = await carol.seen('onContactRefuse');
  assert.deepEqual({ from: refused.from, to: refused.to }, { from: a, to: c });
  assert.deepEqual((await carol.conn.getContacts()).data, []);
  // answered: accepting now is refused by the server
  await assert.rejects(alice.conn.acceptContactInvite(c));
});

test('deleteContact → onContactDeleted on the other side; the blocklist calls', async () => {
  await em.requireMsync(srv);
  const [a, b, c] = await registered('alice', 'bob', 'carol');
  const alice = await login(a);
  const bob = await login(b);
  await alice.conn.addContact(b, '');
  await bob.seen('onContactInvited');
  await bob.conn.acceptContactInvite(a);
  await alice.seen('onContactAgreed');
  await alice.conn.deleteContact(b);
  const deleted = await bob.seen('onContactDeleted');
  assert.deepEqual({ from: deleted.from, to: deleted.to, type: deleted.type }, { from: a, to: b, type: 'unsubscribed' });
  assert.deepEqual((await bob.conn.getContacts()).data, []);

  const added = await alice.conn.addUsersToBlocklist({ name: [c] });
  assert.deepEqual(added.data.userIds, [c]);
  assert.deepEqual((await alice.conn.getBlocklist()).data, [c]);
  await alice.conn.removeUserFromBlocklist({ name: c });
  assert.deepEqual((await alice.conn.getBlocklist()).data, []);
});
