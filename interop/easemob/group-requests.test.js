'use strict';
// Group join requests and invitations that wait for an answer, and the group events with no
// other source, with the official Easemob web SDK (easemob-websdk 4.21.1), unmodified, with user
// tokens: joinGroup on a group needing approval, acceptGroupJoinRequest /
// rejectGroupJoinRequest, inviteUsersToGroup on a group whose invitations need confirming,
// acceptGroupInvite / rejectGroupInvite, judged by their answers and the SDK's own onGroupEvent
// (requestToJoin, acceptRequest, joinPublicGroupDeclined, inviteToJoin, acceptInvite,
// rejectInvite, memberPresence, updateAnnouncement, muteAllMembers, unmuteAllMembers). The rules
// are confab-engine's (conv/group_requests.rs).
const { test } = require('node:test');
const assert = require('node:assert/strict');
const em = require('./sdk');

let srv;
em.suite((s) => (srv = s));

const users = (...names) => em.users(srv, names);

const groupEvent = (client, operation, gid, from) =>
  client.seen('onGroupEvent', (e) => e.operation === operation && e.id === gid && (from === undefined || e.from === from));

async function createGroup(owner, { isPublic = true, approval = false, confirm = false, members = [] } = {}) {
  const r = await owner.conn.createGroupVNext({
    groupName: 'team',
    description: 'a team',
    members,
    isPublic,
    needApprovalToJoin: approval,
    allowMemberToInvite: false,
    inviteNeedConfirm: confirm,
    maxMemberCount: 200,
    extension: '',
  });
  assert.ok(/^\d+$/.test(r.data.groupId), `a group id: ${JSON.stringify(r)}`);
  return r.data.groupId;
}

async function memberIds(client, gid) {
  const r = await client.conn.getGroupMembers({ groupId: gid, limit: 50 });
  return r.data.members.map((m) => m.userId).sort();
}

test('joinGroup on a group needing approval: the owner hears requestToJoin, accepts, the applicant hears acceptRequest and can speak', async () => {
  await em.requireMsync(srv);
  const {
    ids: [a, b, c],
    clients: [alice, bob, carol],
  } = await users('alice', 'bob', 'carol');
  const gid = await createGroup(alice, { approval: true, members: [b] });
  await groupEvent(bob, 'directJoined', gid);

  await carol.conn.joinGroup({ groupId: gid, message: 'let me in' });
  const asked = await groupEvent(alice, 'requestToJoin', gid, c);
  assert.equal(asked.reason, 'let me in');
  // not a member until answered: a plain member may not answer
  assert.deepEqual(await memberIds(alice, gid), [a, b].sort());
  await assert.rejects(bob.conn.acceptGroupJoinRequest({ groupId: gid, applicant: c }));

  await alice.conn.acceptGroupJoinRequest({ groupId: gid, applicant: c });
  const accepted = await groupEvent(carol, 'acceptRequest', gid, a);
  assert.equal(accepted.from, a);
  await groupEvent(bob, 'memberPresence', gid, c);
  assert.deepEqual(await memberIds(alice, gid), [a, b, c].sort());
  const sent = await carol.sendText(gid, 'hello team', { chatType: 'groupChat' });
  const got = await bob.nextText('hello team');
  assert.equal(got.id, sent.serverMsgId);
  // answered: answering again is refused
  await assert.rejects(alice.conn.acceptGroupJoinRequest({ groupId: gid, applicant: c }));
});

test('rejectGroupJoinRequest: the applicant hears joinPublicGroupDeclined and stays out', async () => {
  await em.requireMsync(srv);
  const {
    ids: [a, c],
    clients: [alice, carol],
  } = await users('alice', 'carol');
  const gid = await createGroup(alice, { approval: true });
  await carol.conn.joinGroup({ groupId: gid, message: 'please' });
  await groupEvent(alice, 'requestToJoin', gid, c);
  await alice.conn.rejectGroupJoinRequest({ groupId: gid, applicant: c, reason: 'not now' });
  const declined = await groupEvent(carol, 'joinPublicGroupDeclined', gid, a);
  assert.equal(declined.userId, c);
  assert.deepEqual(await memberIds(alice, gid), [a]);
  // declined: accepting it now is refused
  await assert.rejects(alice.conn.acceptGroupJoinRequest({ groupId: gid, applicant: c }));
});

test('inviteUsersToGroup with inviteNeedConfirm: inviteToJoin, acceptGroupInvite → acceptInvite; rejectGroupInvite → rejectInvite', async () => {
  await em.requireMsync(srv);
  const {
    ids: [a, b, c],
    clients: [alice, bob, carol],
  } = await users('alice', 'bob', 'carol');
  const gid = await createGroup(alice, { isPublic: false, confirm: true });

  await alice.conn.inviteUsersToGroup({ groupId: gid, users: [b, c] });
  const invited = await groupEvent(bob, 'inviteToJoin', gid, a);
  assert.equal(invited.name, 'team');
  await groupEvent(carol, 'inviteToJoin', gid, a);
  assert.deepEqual(await memberIds(alice, gid), [a]);

  await bob.conn.acceptGroupInvite({ groupId: gid, invitee: b });
  await groupEvent(alice, 'acceptInvite', gid, b);
  assert.deepEqual(await memberIds(alice, gid), [a, b].sort());

  await carol.conn.rejectGroupInvite({ groupId: gid, invitee: c });
  await groupEvent(alice, 'rejectInvite', gid, c);
  assert.deepEqual(await memberIds(alice, gid), [a, b].sort());
  // nobody else answers for an invitee, and an answered invitation is gone
  await assert.rejects(bob.conn.acceptGroupInvite({ groupId: gid, invitee: c }));
  await assert.rejects(carol.conn.acceptGroupInvite({ groupId: gid, invitee: c }));
});

test('an announcement and mute-all reach the members as updateAnnouncement and muteAllMembers / unmuteAllMembers', async () => {
  await em.requireMsync(srv);
  const {
    ids: [, b],
    clients: [alice, bob],
  } = await users('alice', 'bob');
  const gid = await createGroup(alice, { members: [b] });
  await groupEvent(bob, 'directJoined', gid);

  await em.rest200(srv, 'POST', `/chatgroups/${gid}/announcement`, { announcement: 'read the rules' });
  const ann = await groupEvent(bob, 'updateAnnouncement', gid);
  assert.equal(ann.announcement, 'read the rules');
  await em.rest200(srv, 'POST', `/chatgroups/${gid}/ban`, {});
  await groupEvent(bob, 'muteAllMembers', gid);
  await em.rest200(srv, 'DELETE', `/chatgroups/${gid}/ban`);
  await groupEvent(bob, 'unmuteAllMembers', gid);
});
