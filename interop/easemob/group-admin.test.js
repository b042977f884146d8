'use strict';
// Group management with the official Easemob web SDK (easemob-websdk 4.21.1), unmodified, with
// user tokens only: modifyGroup, setGroupAdmin, muteGroupMember, isInGroupMutelist,
// disableSendGroupMsg, blockGroupMember, updateGroupAnnouncement / fetchGroupAnnouncement,
// uploadGroupSharedFile / getGroupSharedFilelist, getGroupMembers (cursor form, roles),
// changeGroupOwner, getPublicGroups, getJoinedGroupsCount — judged by their promises and the SDK's
// own onGroupEvent (setAdmin, updateInfo, muteMember, changeOwner). The owner/admin/member rules
// are confab-engine's (`GroupCall`): a refused call rejects.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const em = require('./sdk');

let srv;
em.suite((s) => (srv = s));

const users = (...names) => em.users(srv, names);

const groupEvent = (client, operation, gid, from) =>
  client.seen('onGroupEvent', (e) => e.operation === operation && e.id === gid && (from === undefined || e.from === from));

async function createGroup(owner, { isPublic = true, members = [], name = 'team' } = {}) {
  const r = await owner.conn.createGroupVNext({
    groupName: name,
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

test('the owner names an admin (setAdmin); the admin modifies (updateInfo), mutes (muteMember), mutes everyone, posts the announcement; a member may not', async () => {
  await em.requireMsync(srv);
  const {
    ids: [a, b, c],
    clients: [alice, bob, carol],
  } = await users('alice', 'bob', 'carol');
  const gid = await createGroup(alice, { isPublic: false, members: [b, c] });
  await groupEvent(bob, 'directJoined', gid);
  await groupEvent(carol, 'directJoined', gid);

  // a plain member neither names admins nor modifies the group
  await assert.rejects(bob.conn.setGroupAdmin({ groupId: gid, username: b }));
  await assert.rejects(bob.conn.modifyGroup({ groupId: gid, groupName: 'mine' }));

  await alice.conn.setGroupAdmin({ groupId: gid, username: b });
  const set = await groupEvent(bob, 'setAdmin', gid);
  assert.equal(set.from, a);
  const admins = await carol.conn.getGroupAdmin({ groupId: gid });
  assert.deepEqual(admins.data, [b]);

  await bob.conn.modifyGroup({ groupId: gid, groupName: 'renamed', description: 'new words' });
  const updated = await groupEvent(carol, 'updateInfo', gid);
  assert.equal(updated.from, b);
  const info = await carol.conn.getGroupInfo({ groupId: gid });
  assert.equal(info.data[0].name, 'renamed');
  assert.equal(info.data[0].description, 'new words');

  // mutes: carol hears muteMember from bob; she asks isInGroupMutelist for herself
  await assert.rejects(carol.conn.muteGroupMember({ groupId: gid, username: b, muteDuration: 60000 }));
  await bob.conn.muteGroupMember({ groupId: gid, username: c, muteDuration: 600000 });
  const muted = await groupEvent(carol, 'muteMember', gid);
  assert.equal(muted.from, b);
  assert.equal((await carol.conn.isInGroupMutelist({ groupId: gid })).data, true);
  assert.equal((await bob.conn.isInGroupMutelist({ groupId: gid })).data, false);
  // an admin may not mute the owner: the mute list holds carol alone
  await bob.conn.muteGroupMember({ groupId: gid, username: a, muteDuration: 60000 }).catch(() => {});
  const list = await bob.conn.getGroupMuteList({ groupId: gid });
  assert.deepEqual(list.data.map((m) => m.user), [c]);
  await assert.rejects(carol.conn.getGroupMuteList({ groupId: gid }));

  // mute everyone, the announcement: the owner and admins
  await assert.rejects(carol.conn.disableSendGroupMsg({ groupId: gid }));
  const all = await bob.conn.disableSendGroupMsg({ groupId: gid });
  assert.equal(all.data.mute, true);
  await bob.conn.enableSendGroupMsg({ groupId: gid });
  await assert.rejects(carol.conn.updateGroupAnnouncement({ groupId: gid, announcement: 'carol was here' }));
  await bob.conn.updateGroupAnnouncement({ groupId: gid, announcement: 'meeting at noon' });
  const ann = await carol.conn.fetchGroupAnnouncement({ groupId: gid });
  assert.equal(ann.data.announcement, 'meeting at noon');

  // blocks: never the owner; the admin blocks carol, who is out
  await assert.rejects(bob.conn.blockGroupMember({ groupId: gid, username: a }));
  await assert.rejects(carol.conn.blockGroupMember({ groupId: gid, username: b }));
  await bob.conn.blockGroupMember({ groupId: gid, username: c });
  const blocked = await alice.conn.getGroupBlocklist({ groupId: gid });
  assert.deepEqual(blocked.data, [c]);
  await assert.rejects(carol.conn.getGroupInfo({ groupId: gid }));
});

test('members page by cursor with their roles; shared files; the owner alone hands the group over (changeOwner)', async () => {
  await em.requireMsync(srv);
  const {
    ids: [a, b, c, d],
    clients: [alice, bob, carol, dave],
  } = await users('alice', 'bob', 'carol', 'dave');
  const gid = await createGroup(alice, { isPublic: false, members: [b, c] });
  await groupEvent(carol, 'directJoined', gid);
  await alice.conn.setGroupAdmin({ groupId: gid, username: b });

  const first = await carol.conn.getGroupMembers({ groupId: gid, limit: 2 });
  assert.deepEqual(first.data.members.map((m) => [m.role, m.userId]), [['owner', a], ['admin', b]]);
  assert.ok(first.data.members.every((m) => m.joinedTime > 0), 'joined times');
  assert.ok(first.data.cursor, 'a cursor while more remain');
  const rest = await carol.conn.getGroupMembers({ groupId: gid, limit: 2, cursor: first.data.cursor });
  assert.deepEqual(rest.data.members.map((m) => [m.role, m.userId]), [['member', c]]);
  // an outsider of a private group reads nothing of it
  await assert.rejects(dave.conn.getGroupMembers({ groupId: gid, limit: 2 }));
  await assert.rejects(dave.conn.getGroupSharedFilelist({ groupId: gid, pageNum: 1, pageSize: 10 }));

  // a member uploads a shared file (uploadGroupSharedFile): listed with its uploader
  const bytes = Buffer.from('group notes');
  const done = new Promise((resolve, reject) => {
    carol.conn.uploadGroupSharedFile({
      groupId: gid,
      file: { data: new File([bytes], 'notes.txt', { type: 'text/plain' }), filename: 'notes.txt', filetype: 'txt', url: '' },
      onFileUploadComplete: resolve,
      onFileUploadError: (e) => reject(new Error(`upload: ${JSON.stringify(e)}`)),
    });
  });
  const uploaded = await em.within(done, 20000, 'the shared file upload');
  assert.equal(uploaded.data.file_name, 'notes.txt', JSON.stringify(uploaded));
  const files = await carol.conn.getGroupSharedFilelist({ groupId: gid, pageNum: 1, pageSize: 10 });
  assert.deepEqual(files.data.map((f) => [f.file_name, f.file_owner, f.file_size]), [['notes.txt', c, bytes.length]]);

  await assert.rejects(bob.conn.changeGroupOwner({ groupId: gid, newOwner: b }));
  await assert.rejects(alice.conn.changeGroupOwner({ groupId: gid, newOwner: d }), 'the new owner must be a member');
  await alice.conn.changeGroupOwner({ groupId: gid, newOwner: c });
  const changed = await groupEvent(carol, 'changeOwner', gid);
  assert.equal(changed.from, a);
  const info = await bob.conn.getGroupInfo({ groupId: gid });
  assert.equal(info.data[0].owner, c);
});

test('getPublicGroups lists public groups only, by cursor; getJoinedGroupsCount counts the user\'s groups', async () => {
  await em.requireMsync(srv);
  const {
    ids: [, b],
    clients: [alice, bob],
  } = await users('alice', 'bob');
  const open = await createGroup(alice, { isPublic: true, members: [b], name: 'open' });
  const closed = await createGroup(alice, { isPublic: false, members: [b], name: 'closed' });

  // other tests' public groups are listed too: page until both are seen or the pages end
  const seen = new Map();
  let cursor = null;
  for (let i = 0; i < 50; i += 1) {
    const page = await bob.conn.getPublicGroups({ limit: 20, cursor });
    for (const g of page.data) seen.set(g.groupid, g.groupname);
    cursor = page.cursor;
    if (!cursor) break;
  }
  assert.equal(seen.get(open), 'open');
  assert.equal(seen.has(closed), false, 'a private group is not public');

  const count = await bob.conn.getJoinedGroupsCount();
  assert.equal(count.data, 2);
});

test('chat rooms: anyone reads them (getChatRooms, getChatRoomDetails); the owner names an admin, who modifies and mutes (isInChatRoomMutelist); a super admin creates, the owner destroys', async () => {
  await em.requireMsync(srv);
  const {
    ids: [a, b, c],
    clients: [alice, bob, carol],
  } = await users('alice', 'bob', 'carol');
  // a plain user may not create a room; a chat room super admin may (Easemob's rule)
  await assert.rejects(alice.conn.createChatRoom({ name: 'lobby', description: 'd', maxusers: 100, members: [b, c] }));
  await em.rest200(srv, 'POST', '/chatrooms/super_admin', { superadmin: a });
  const made = await alice.conn.createChatRoom({ name: 'lobby', description: 'a room', maxusers: 100, members: [b, c] });
  const rid = made.data.id;
  assert.ok(/^\d+$/.test(rid), JSON.stringify(made));

  const details = await carol.conn.getChatRoomDetails({ chatRoomId: rid });
  assert.equal(details.data[0].owner, a);
  assert.equal(details.data[0].name, 'lobby');
  const rooms = await carol.conn.getChatRooms({ pagenum: 1, pagesize: 100 });
  assert.ok(rooms.data.some((r) => r.id === rid), JSON.stringify(rooms.data));

  await assert.rejects(bob.conn.modifyChatRoom({ chatRoomId: rid, chatRoomName: 'mine' }));
  await assert.rejects(bob.conn.setChatRoomAdmin({ chatRoomId: rid, username: b }));
  await alice.conn.setChatRoomAdmin({ chatRoomId: rid, username: b });
  await bob.conn.modifyChatRoom({ chatRoomId: rid, chatRoomName: 'renamed', description: 'new words' });
  const after = await carol.conn.getChatRoomDetails({ chatRoomId: rid });
  assert.equal(after.data[0].name, 'renamed');
  assert.equal(after.data[0].description, 'new words');

  await assert.rejects(carol.conn.muteChatRoomMember({ chatRoomId: rid, username: b, muteDuration: 60000 }));
  await bob.conn.muteChatRoomMember({ chatRoomId: rid, username: c, muteDuration: 600000 });
  assert.equal((await carol.conn.isInChatRoomMutelist({ chatRoomId: rid })).data, true);
  assert.equal((await bob.conn.isInChatRoomMutelist({ chatRoomId: rid })).data, false);

  await assert.rejects(bob.conn.destroyChatRoom({ chatRoomId: rid }));
  await alice.conn.destroyChatRoom({ chatRoomId: rid });
  await assert.rejects(carol.conn.getChatRoomDetails({ chatRoomId: rid }));
});
