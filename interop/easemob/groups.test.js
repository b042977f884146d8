'use strict';
// Groups with the official Easemob web SDK (easemob-websdk 4.21.1), unmodified, with user tokens
// only: createGroupVNext, getGroupInfo, inviteUsersToGroup, joinGroup, getGroupMembers,
// removeGroupMember, leaveGroup, destroyGroup, judged by their answers and the SDK's own
// onGroupEvent (directJoined, memberPresence, removeMember, memberAbsence, destroy) and
// onTextMessage for a group message. The owner/admin/member rules are confab-engine's.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const em = require('./sdk');

let srv;
em.suite((s) => (srv = s));

const users = (...names) => em.users(srv, names);

const groupEvent = (client, operation, gid, from) =>
  client.seen('onGroupEvent', (e) => e.operation === operation && e.id === gid && (from === undefined || e.from === from));

async function createGroup(owner, { isPublic = true, members = [] } = {}) {
  const r = await owner.conn.createGroupVNext({
    groupName: 'team',
    description: 'a team',
    members,
    isPublic,
    needApprovalToJoin: false,
    allowMemberToInvite: false,
    inviteNeedConfirm: false,
    maxMemberCount: 200,
    extension: '',
  });
  assert.ok(/^\d+$/.test(r.data.groupId), `a group id: ${JSON.stringify(r)}`);
  return r.data.groupId;
}

test('a user creates a group, invites one user (directJoined), another joins it (memberPresence); all get a group message', async () => {
  await em.requireMsync(srv);
  const {
    ids: [a, b, c],
    clients: [alice, bob, carol],
  } = await users('alice', 'bob', 'carol');
  const gid = await createGroup(alice);
  const info = await alice.conn.getGroupInfo({ groupId: gid });
  assert.equal(info.data[0].owner, a);
  assert.equal(info.data[0].public, true);

  await alice.conn.inviteUsersToGroup({ groupId: gid, users: [b] });
  const joined = await groupEvent(bob, 'directJoined', gid);
  assert.equal(joined.from, a);
  // a plain member may not invite (the group does not let members invite)
  await assert.rejects(bob.conn.inviteUsersToGroup({ groupId: gid, users: [c] }));

  await carol.conn.joinGroup({ groupId: gid, message: 'let me in' });
  await groupEvent(bob, 'memberPresence', gid, c);
  const members = await bob.conn.getGroupMembers({ groupId: gid, limit: 50 });
  assert.deepEqual(members.data.members.map((m) => [m.role, m.userId]), [['owner', a], ['member', b], ['member', c]]);
  assert.ok(members.data.members.every((m) => m.joinedTime > 0), 'joined times');

  const sent = await alice.sendText(gid, 'hello team', { chatType: 'groupChat' });
  for (const member of [bob, carol]) {
    const got = await member.nextText('hello team');
    assert.equal(got.id, sent.serverMsgId);
    assert.equal(got.chatType, 'groupChat');
    assert.equal(got.to, gid);
  }
});

test('the owner removes a member (removeMember to them, memberAbsence to others), a member leaves, the owner destroys (destroy)', async () => {
  await em.requireMsync(srv);
  const {
    ids: [a, b, c, d],
    clients: [alice, bob, carol, dave],
  } = await users('alice', 'bob', 'carol', 'dave');
  const gid = await createGroup(alice, { isPublic: false, members: [b, c, d] });
  await groupEvent(bob, 'directJoined', gid);
  await groupEvent(carol, 'directJoined', gid);

  // only the owner or an admin removes
  await assert.rejects(bob.conn.removeGroupMember({ groupId: gid, username: c }));
  await alice.conn.removeGroupMember({ groupId: gid, username: c });
  const removed = await groupEvent(carol, 'removeMember', gid);
  assert.equal(removed.from, a);
  await groupEvent(bob, 'memberAbsence', gid, c);
  // carol is out of the private group: she may not see it
  await assert.rejects(carol.conn.getGroupInfo({ groupId: gid }));

  await dave.conn.leaveGroup({ groupId: gid });
  await groupEvent(bob, 'memberAbsence', gid, d);
  // the owner may not leave, nor a member destroy
  await assert.rejects(alice.conn.leaveGroup({ groupId: gid }));
  await assert.rejects(bob.conn.destroyGroup({ groupId: gid }));

  await alice.conn.destroyGroup({ groupId: gid });
  const destroyed = await groupEvent(bob, 'destroy', gid);
  assert.equal(destroyed.from, a);
  const codes = em.sdk().statusCode;
  await assert.rejects(bob.conn.getGroupInfo({ groupId: gid }), (e) => e.type === codes.GROUP_NOT_EXIST);
});

test('a full group refuses joinGroup with the SDK\'s GROUP_MEMBERS_FULL', async () => {
  await em.requireMsync(srv);
  const {
    ids: [, b],
    clients: [alice, , carol],
  } = await users('alice', 'bob', 'carol');
  const r = await alice.conn.createGroupVNext({ groupName: 'two', members: [b], isPublic: true, maxMemberCount: 2 });
  const codes = em.sdk().statusCode;
  await assert.rejects(carol.conn.joinGroup({ groupId: r.data.groupId, message: '' }), (e) => e.type === codes.GROUP_MEMBERS_FULL);
});
