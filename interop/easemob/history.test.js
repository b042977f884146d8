'use strict';
// History and the conversation list with the official Easemob web SDK (easemob-websdk 4.21.1) and
// agora-chat 1.4.0, unmodified, judged by the SDK's own results: getHistoryMessages (REST
// POST /users/{u}/messageroaming, whose base64 Metas the SDK decodes as it decodes msync),
// getServerConversations / getServerPinnedConversations / getServerConversationsByFilter /
// pinConversation / addConversationMark / deleteConversation (/sdk/user/{u}/user_channels/list,
// /user_channel/top, /user_channels/mark), getSelfIdsOnOtherPlatform, renewToken.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const em = require('./sdk');

let srv;
em.suite((s) => (srv = s));

/** Users registered with the common password, each logged in with SDK `sdk`. */
const users = (sdk, ...names) => em.users(srv, names, { sdk });

/** Every page of getHistoryMessages, `pageSize` at a time: the messages in the order given. */
async function allHistory(client, params, pageSize) {
  const out = [];
  let cursor = -1;
  for (let pages = 1; ; pages++) {
    const page = await em.within(client.conn.getHistoryMessages({ ...params, cursor, pageSize }), 15000, 'getHistoryMessages');
    out.push(...page.messages);
    if (page.isLast) return { messages: out, pages };
    assert.equal(page.messages.length, pageSize, 'a page that is not the last is full');
    assert.ok(page.cursor, `a cursor for the next page: ${JSON.stringify(page)}`);
    cursor = page.cursor;
    assert.ok(pages < 20, 'the pages end');
  }
}

for (const sdk of ['easemob', 'agora']) {
  test(`${sdk}: getHistoryMessages returns the one-to-one messages sent, newest first going up and oldest first going down, page by page`, async () => {
    await em.requireMsync(srv);
    const {
      ids: [a, b],
      clients: [alice, bob],
    } = await users(sdk, 'alice', 'bob');
    const sent = [];
    for (let i = 0; i < 5; i++) {
      const [from, to] = i % 2 === 0 ? [alice, b] : [bob, a];
      sent.push({ id: String((await from.sendText(to, `m${i}`)).serverMsgId), msg: `m${i}`, from: i % 2 === 0 ? a : b });
    }
    await alice.nextText('m3');

    const up = await allHistory(bob, { targetId: a, chatType: 'singleChat', searchDirection: 'up' }, 2);
    assert.equal(up.pages, 3);
    assert.deepEqual(
      up.messages.map((m) => ({ id: String(m.id), msg: m.msg, from: m.from })),
      [...sent].reverse(),
      'newest first, each once, with the ids send() resolved',
    );
    for (const m of up.messages) {
      assert.equal(m.type, 'txt');
      assert.equal(m.chatType, 'singleChat');
      assert.equal(m.to, m.from === a ? b : a);
      assert.ok(Number(m.time) > 0);
    }
    const down = await allHistory(alice, { targetId: b, chatType: 'singleChat', searchDirection: 'down' }, 3);
    assert.deepEqual(down.messages.map((m) => m.msg), ['m0', 'm1', 'm2', 'm3', 'm4'], 'oldest first');
  });
}

test('getHistoryMessages of a group, with searchOptions (msgTypes, from); a non-member is refused', async () => {
  await em.requireMsync(srv);
  const {
    ids: [a, b, c],
    clients: [alice, bob, carol],
  } = await users('easemob', 'alice', 'bob', 'carol');
  const g = await em.rest200(srv, 'POST', '/chatgroups', { groupname: 'team', desc: 'd', public: true, owner: a, members: [b] });
  const gid = g.data.groupid;
  await alice.sendText(gid, 'a1', { chatType: 'groupChat' });
  await bob.sendText(gid, 'b1', { chatType: 'groupChat' });
  await alice.conn.send(alice.create({ type: 'custom', chatType: 'groupChat', to: gid, customEvent: 'poke', customExts: { k: 'v' } }));
  await alice.sendText(gid, 'a2', { chatType: 'groupChat' });
  await bob.nextText('a2');

  const all = await allHistory(bob, { targetId: gid, chatType: 'groupChat', searchDirection: 'down' }, 10);
  assert.deepEqual(all.messages.map((m) => m.type), ['txt', 'txt', 'custom', 'txt']);
  assert.equal(all.messages[2].customEvent, 'poke');
  assert.deepEqual(all.messages[2].customExts, { k: 'v' });
  for (const m of all.messages) {
    assert.equal(m.chatType, 'groupChat');
    assert.equal(m.to, gid);
  }
  const texts = await allHistory(bob, { targetId: gid, chatType: 'groupChat', searchOptions: { msgTypes: ['txt'], from: a } }, 10);
  assert.deepEqual(texts.messages.map((m) => m.msg), ['a2', 'a1']);

  await assert.rejects(
    em.within(carol.conn.getHistoryMessages({ targetId: gid, chatType: 'groupChat', pageSize: 10 }), 15000, 'getHistoryMessages'),
    (e) => e && e.type === em.sdk().statusCode.PERMISSION_DENIED,
    `${c} is not in the group: PERMISSION_DENIED (403 forbidden_op)`,
  );
});

/** The SDK's conversation list, every page. */
async function serverConversations(client, pinned = false) {
  const call = pinned ? 'getServerPinnedConversations' : 'getServerConversations';
  const out = [];
  let cursor = '';
  for (;;) {
    const r = await em.within(client.conn[call]({ pageSize: 2, cursor }), 15000, call);
    out.push(...r.data.conversations);
    if (!r.data.cursor) return out;
    cursor = r.data.cursor;
  }
}

test('getServerConversations lists the conversations with unread counts and last messages; pin, channel ack, marks, deleteConversation', async () => {
  await em.requireMsync(srv);
  const {
    ids: [a, b, c],
    clients: [alice, bob, carol],
  } = await users('easemob', 'alice', 'bob', 'carol');
  const g = await em.rest200(srv, 'POST', '/chatgroups', { groupname: 'team', desc: 'd', public: true, owner: a, members: [b, c] });
  const gid = g.data.groupid;
  // a few ms apart: the list is ordered by last message time
  const pause = () => new Promise((r) => setTimeout(r, 5));
  await alice.sendText(b, 'hi bob');
  await alice.sendText(b, 'still there?');
  await pause();
  await carol.sendText(gid, 'to the team', { chatType: 'groupChat' });
  await pause();
  await bob.sendText(c, 'hi carol');
  await bob.nextText('to the team');

  const list = await serverConversations(bob);
  assert.deepEqual(
    list.map((x) => [x.conversationId, x.conversationType, x.unReadCount, x.isPinned]),
    [
      [c, 'singleChat', 0, false],
      [gid, 'groupChat', 1, false],
      [a, 'singleChat', 2, false],
    ],
    'newest first, with what bob has not read',
  );
  const last = list[2].lastMessage;
  assert.equal(last.type, 'txt');
  assert.equal(last.msg, 'still there?');
  assert.equal(last.from, a);
  assert.equal(last.to, b);
  assert.equal(last.chatType, 'singleChat');
  assert.equal(list[1].lastMessage.msg, 'to the team');
  assert.equal(list[1].lastMessage.chatType, 'groupChat');

  // a conversation read (channel ack): nothing unread there any more
  await bob.conn.send(bob.create({ type: 'channel', chatType: 'singleChat', to: a }));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await serverConversations(bob)).find((x) => x.conversationId === a).unReadCount, 0);

  // pinned: first in the list, and alone in the pinned list
  const pin = await em.within(bob.conn.pinConversation({ conversationId: a, conversationType: 'singleChat', isPinned: true }), 15000, 'pin');
  assert.equal(pin.data.isPinned, true);
  assert.ok(pin.data.pinnedTime > 0);
  const pinnedFirst = await serverConversations(bob);
  assert.deepEqual([pinnedFirst[0].conversationId, pinnedFirst[0].isPinned], [a, true]);
  assert.deepEqual((await serverConversations(bob, true)).map((x) => x.conversationId), [a]);
  const unpin = await em.within(bob.conn.pinConversation({ conversationId: a, conversationType: 'singleChat', isPinned: false }), 15000, 'unpin');
  assert.equal(unpin.data.isPinned, false);
  assert.deepEqual(await serverConversations(bob, true), []);

  // marks: addConversationMark, listed with the conversation, found by getServerConversationsByFilter
  const conversations = [
    { conversationId: a, conversationType: 'singleChat' },
    { conversationId: gid, conversationType: 'groupChat' },
  ];
  await em.within(bob.conn.addConversationMark({ conversations, mark: 2 }), 15000, 'addConversationMark');
  await em.within(bob.conn.addConversationMark({ conversations: conversations.slice(1), mark: 0 }), 15000, 'addConversationMark');
  const marked = await serverConversations(bob);
  assert.deepEqual(marked.find((x) => x.conversationId === gid).marks, [0, 2]);
  assert.deepEqual(marked.find((x) => x.conversationId === c).marks, []);
  const byMark = async (mark) => {
    const r = await em.within(bob.conn.getServerConversationsByFilter({ pageSize: 10, cursor: '', filter: { mark } }), 15000, 'byFilter');
    return r.data.conversations.map((x) => x.conversationId);
  };
  assert.deepEqual(await byMark(2), [gid, a]);
  await em.within(bob.conn.removeConversationMark({ conversations: conversations.slice(1), mark: 2 }), 15000, 'removeConversationMark');
  assert.deepEqual(await byMark(2), [a]);
  assert.deepEqual(await byMark(0), [gid]);

  // deleteConversation: gone from bob's list, still in alice's
  await em.within(bob.conn.deleteConversation({ channel: a, chatType: 'singleChat', deleteRoam: false }), 15000, 'deleteConversation');
  assert.deepEqual((await serverConversations(bob)).map((x) => x.conversationId), [c, gid]);
  assert.ok((await serverConversations(alice)).some((x) => x.conversationId === b));
});

test('getSelfIdsOnOtherPlatform names the other devices online; renewToken takes a new token and says when it expires', async () => {
  await em.requireMsync(srv);
  const a = em.uname('alice');
  await em.register(srv, a);
  const laptop = await em.connect(srv, { user: a, pwd: em.PASSWORD }, { deviceId: 'laptop' });
  const phone = await em.connect(srv, { user: a, pwd: em.PASSWORD }, { deviceId: 'phone' });
  const others = await em.within(laptop.conn.getSelfIdsOnOtherPlatform(), 15000, 'getSelfIdsOnOtherPlatform');
  assert.deepEqual(others.data, [`${a}/webim_web_phone`]);
  phone.close();

  const token = await em.userToken(srv, a);
  const renewed = await em.within(laptop.conn.renewToken(token), 15000, 'renewToken');
  assert.equal(renewed.status, true);
  assert.equal(renewed.token, token);
  assert.ok(renewed.expire > Date.now() + 3600 * 1000, `an expiry in the future: ${renewed.expire}`);
});
