'use strict';
// The rest of the client-only REST calls with the official Easemob web SDK (easemob-websdk 4.21.1),
// unmodified, judged by its own results (specs/easemob-msync.md §12.2, §12.3, §12.6): threads with
// the user's token (createChatThread … destroyChatThread), pinned messages, removeHistoryMessages and
// deleteAllMessagesAndConversations, contact remarks, the silent-mode lists and group shields,
// reportMessage, getGroupMsgReadUser, group member attributes.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const em = require('./sdk');

let srv;
em.suite((s) => (srv = s));

const users = (...names) => em.users(srv, names);

const call = (p, what) => em.within(p, 15000, what);
/** A refusal the SDK maps from 403 `forbidden_op`. */
const denied = (e) => e && e.type === em.sdk().statusCode.PERMISSION_DENIED;

/** A public group of the first user's with the others in it, and a message of the owner's in it. */
async function groupOf(owner, ownerId, members) {
  const g = await em.rest200(srv, 'POST', '/chatgroups', { groupname: 'team', desc: 'd', public: true, owner: ownerId, members });
  const gid = g.data.groupid;
  const sent = await owner.sendText(gid, 'root', { chatType: 'groupChat' });
  return { gid, msgId: String(sent.serverMsgId) };
}

test('threads with the user token: create, join, details, members, lists, last message, rename, remove, leave, destroy', async () => {
  await em.requireMsync(srv);
  const {
    ids: [a, b, c, d],
    clients: [alice, bob, carol, dave],
  } = await users('alice', 'bob', 'carol', 'dave');
  const { gid, msgId } = await groupOf(alice, a, [b, c]);

  const created = await call(bob.conn.createChatThread({ name: 'plans', messageId: msgId, parentId: gid }), 'createChatThread');
  const tid = created.data.chatThreadId;
  assert.ok(tid, JSON.stringify(created));
  await assert.rejects(call(dave.conn.joinChatThread({ chatThreadId: tid }), 'joinChatThread'), denied, 'dave is not in the group');
  const joined = await call(carol.conn.joinChatThread({ chatThreadId: tid }), 'joinChatThread');
  assert.equal(joined.data.detail.messageId, msgId);
  assert.equal(joined.data.detail.parentId, gid);

  const detail = await call(alice.conn.getChatThreadDetail({ chatThreadId: tid }), 'getChatThreadDetail');
  assert.equal(detail.data.name, 'plans');
  assert.equal(detail.data.owner, b);
  assert.equal(detail.data.affiliationsCount, 2);
  assert.equal(detail.data.messageId, msgId);
  assert.equal(detail.data.parentId, gid);

  const members = await call(carol.conn.getChatThreadMembers({ chatThreadId: tid, pageSize: 20 }), 'getChatThreadMembers');
  assert.deepEqual(members.data.affiliations, [b, c]);

  const threads = await call(carol.conn.getChatThreads({ parentId: gid, pageSize: 20 }), 'getChatThreads');
  assert.deepEqual(
    threads.entities.map((t) => [t.id, t.parentId, t.messageId, t.owner]),
    [[tid, gid, msgId, b]],
  );

  const last = await call(bob.conn.getChatThreadLastMessage({ chatThreadIds: [tid] }), 'getChatThreadLastMessage');
  assert.equal(last.entities.length, 1);
  assert.equal(last.entities[0].chatThreadId, tid);

  await assert.rejects(call(carol.conn.changeChatThreadName({ chatThreadId: tid, name: 'mine' }), 'changeChatThreadName'), denied);
  await call(bob.conn.changeChatThreadName({ chatThreadId: tid, name: 'renamed' }), 'changeChatThreadName');
  assert.equal((await call(carol.conn.getChatThreadDetail({ chatThreadId: tid }), 'detail')).data.name, 'renamed');

  await assert.rejects(call(bob.conn.removeChatThreadMember({ chatThreadId: tid, username: c }), 'removeChatThreadMember'), denied);
  await call(alice.conn.removeChatThreadMember({ chatThreadId: tid, username: c }), 'removeChatThreadMember');
  await call(carol.conn.joinChatThread({ chatThreadId: tid }), 'joinChatThread');
  await call(carol.conn.leaveChatThread({ chatThreadId: tid }), 'leaveChatThread');
  const left = await call(bob.conn.getChatThreadMembers({ chatThreadId: tid, pageSize: 20 }), 'getChatThreadMembers');
  assert.deepEqual(left.data.affiliations, [b]);

  await assert.rejects(call(carol.conn.destroyChatThread({ chatThreadId: tid }), 'destroyChatThread'), denied);
  await call(bob.conn.destroyChatThread({ chatThreadId: tid }), 'destroyChatThread');
  await assert.rejects(call(alice.conn.getChatThreadDetail({ chatThreadId: tid }), 'detail'), 'the thread is gone');
  void d;
});

test('pinMessage, getServerPinnedMessages, unpinMessage: the conversation’s pins, seen by every member', async () => {
  await em.requireMsync(srv);
  const {
    ids: [a, b],
    clients: [alice, bob],
  } = await users('alice', 'bob');
  const { gid, msgId } = await groupOf(alice, a, [b]);
  await call(bob.conn.pinMessage({ conversationId: gid, conversationType: 'groupChat', messageId: msgId }), 'pinMessage');
  const pinned = await call(alice.conn.getServerPinnedMessages({ conversationId: gid, conversationType: 'groupChat', pageSize: 10 }), 'pinned');
  assert.equal(pinned.data.list.length, 1);
  const p = pinned.data.list[0];
  assert.equal(p.operatorId, b);
  assert.ok(p.pinTime > 0);
  assert.equal(String(p.message.id), msgId);
  assert.equal(p.message.msg, 'root');
  assert.equal(p.message.chatType, 'groupChat');
  assert.equal(pinned.data.cursor, '');
  await call(alice.conn.unpinMessage({ conversationId: gid, conversationType: 'groupChat', messageId: msgId }), 'unpinMessage');
  const none = await call(bob.conn.getServerPinnedMessages({ conversationId: gid, conversationType: 'groupChat' }), 'pinned');
  assert.deepEqual(none.data.list, []);

  // one-to-one
  const dm = await alice.sendText(b, 'remember this');
  await call(bob.conn.pinMessage({ conversationId: a, conversationType: 'singleChat', messageId: String(dm.serverMsgId) }), 'pinMessage');
  const mine = await call(alice.conn.getServerPinnedMessages({ conversationId: b, conversationType: 'singleChat' }), 'pinned');
  assert.deepEqual(
    mine.data.list.map((x) => [x.message.msg, x.message.from, x.message.to, x.message.chatType, x.operatorId]),
    [['remember this', a, b, 'singleChat', b]],
  );
});

/** A user's roaming history of a conversation, oldest first. */
async function texts(client, targetId, chatType) {
  const page = await call(client.conn.getHistoryMessages({ targetId, chatType, pageSize: 50, searchDirection: 'down' }), 'history');
  return page.messages.map((m) => m.msg);
}

test('removeHistoryMessages and deleteAllMessagesAndConversations erase history for the user alone', async () => {
  await em.requireMsync(srv);
  const {
    ids: [a, b],
    clients: [alice, bob],
  } = await users('alice', 'bob');
  const ids = [];
  for (const t of ['m0', 'm1', 'm2']) {
    ids.push(String((await alice.sendText(b, t)).serverMsgId));
    await new Promise((r) => setTimeout(r, 5));
  }
  await bob.nextText('m2');
  await call(bob.conn.removeHistoryMessages({ targetId: a, chatType: 'singleChat', messageIds: [ids[0]] }), 'removeHistoryMessages');
  assert.deepEqual(await texts(bob, a, 'singleChat'), ['m1', 'm2']);
  assert.deepEqual(await texts(alice, b, 'singleChat'), ['m0', 'm1', 'm2'], 'alice keeps them');
  await call(bob.conn.removeHistoryMessages({ targetId: a, chatType: 'singleChat', beforeTimeStamp: Date.now() + 1000 }), 'by time');
  assert.deepEqual(await texts(bob, a, 'singleChat'), []);

  const { gid } = await groupOf(alice, a, [b]);
  await bob.nextText('root');
  await call(bob.conn.deleteAllMessagesAndConversations(), 'deleteAllMessagesAndConversations');
  assert.deepEqual(await texts(bob, gid, 'groupChat'), []);
  const list = await call(bob.conn.getServerConversations({ pageSize: 20, cursor: '' }), 'getServerConversations');
  assert.deepEqual(list.data.conversations, []);
  assert.deepEqual(await texts(alice, gid, 'groupChat'), ['root']);
});

test('setContactRemark is shown by getAllContacts and getContactsWithCursor', async () => {
  await em.requireMsync(srv);
  const {
    ids: [a, b, c],
    clients: [alice],
  } = await users('alice', 'bob', 'carol');
  for (const f of [b, c]) await em.rest200(srv, 'POST', `/users/${a}/contacts/users/${f}`, {});
  await call(alice.conn.setContactRemark({ userId: b, remark: 'Bobby' }), 'setContactRemark');
  const all = await call(alice.conn.getAllContacts(), 'getAllContacts');
  assert.deepEqual(
    all.data.map((x) => [x.userId, x.remark]).sort(),
    [
      [b, 'Bobby'],
      [c, ''],
    ],
  );
  const first = await call(alice.conn.getContactsWithCursor({ pageSize: 1 }), 'getContactsWithCursor');
  assert.deepEqual(first.data.contacts, [{ userId: b, remark: 'Bobby' }]);
  assert.ok(first.data.cursor);
  const second = await call(alice.conn.getContactsWithCursor({ pageSize: 1, cursor: first.data.cursor }), 'getContactsWithCursor');
  assert.deepEqual(second.data.contacts, [{ userId: c, remark: '' }]);
  assert.equal(second.data.cursor, '');
});

test('silent-mode lists, group shields, reportMessage, getGroupMsgReadUser, group member attributes', async () => {
  await em.requireMsync(srv);
  const {
    ids: [a, b, c],
    clients: [alice, bob, carol],
  } = await users('alice', 'bob', 'carol');
  const { gid, msgId } = await groupOf(alice, a, [b]);
  await call(bob.conn.setSilentModeForConversation({ conversationId: a, type: 'singleChat', options: { paramType: 0, remindType: 'NONE' } }), 'silent');
  const some = await call(
    bob.conn.getSilentModeForConversations({ conversationList: [{ id: a, type: 'singleChat' }, { id: gid, type: 'groupChat' }] }),
    'getSilentModeForConversations',
  );
  assert.equal(some.data.user[a].type, 'NONE');
  assert.equal(some.data.group[gid].type, 'DEFAULT');
  await call(bob.conn.blockGroupMessage({ groupId: gid }), 'blockGroupMessage');
  const types = await call(bob.conn.getSilentModeRemindTypeConversations({ pageSize: 10 }), 'remind types');
  assert.deepEqual(
    types.data.conversations.map((x) => [x.conversationId, x.type, x.remindType]),
    [
      [a, 'singleChat', 'NONE'],
      [gid, 'groupChat', 'NONE'],
    ],
  );
  await call(bob.conn.unblockGroupMessage({ groupId: gid }), 'unblockGroupMessage');
  const after = await call(bob.conn.getSilentModeRemindTypeConversations({ pageSize: 10 }), 'remind types');
  assert.deepEqual(after.data.conversations.map((x) => x.conversationId), [a]);

  await call(bob.conn.reportMessage({ reportType: 'spam', reportReason: 'ads', messageId: msgId }), 'reportMessage');
  await assert.rejects(call(carol.conn.reportMessage({ reportType: 'spam', reportReason: 'x', messageId: msgId }), 'reportMessage'));
  const reports = await em.rest200(srv, 'GET', '/moderation/reports');
  assert.deepEqual(
    reports.entities.map((r) => [r.reporter, r.msg, r.type, r.reason]),
    [[b, msgId, 'spam', 'ads']],
  );

  const readers = await call(alice.conn.getGroupMsgReadUser({ groupId: gid, msgId }), 'getGroupMsgReadUser');
  assert.deepEqual(readers.data, [], 'nobody read it yet');
  // bob reads the group (a channel ack): he is among its readers
  await bob.conn.send(bob.create({ type: 'channel', chatType: 'groupChat', to: gid }));
  await new Promise((r) => setTimeout(r, 300));
  const read = await call(alice.conn.getGroupMsgReadUser({ groupId: gid, msgId }), 'getGroupMsgReadUser');
  assert.deepEqual(read.data, [b]);

  await call(bob.conn.setGroupMemberAttributes({ groupId: gid, userId: b, memberAttributes: { nick: 'B' } }), 'setGroupMemberAttributes');
  const mine = await call(alice.conn.getGroupMemberAttributes({ groupId: gid, userId: b }), 'getGroupMemberAttributes');
  assert.deepEqual(mine.data, { nick: 'B' });
  const many = await call(alice.conn.getGroupMembersAttributes({ groupId: gid, userIds: [a, b], keys: [] }), 'getGroupMembersAttributes');
  assert.deepEqual(many.data, { [a]: {}, [b]: { nick: 'B' } });
  await assert.rejects(
    call(carol.conn.getGroupMembersAttributes({ groupId: gid, userIds: [b] }), 'getGroupMembersAttributes'),
    denied,
    'carol is not in the group',
  );
  void c;
});
