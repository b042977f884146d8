'use strict';
// Every conversation flow of leancloud-realtime 4.3.1, driven by the unmodified SDK against the
// real binary: start, query, members (add/remove/join/quit), update, mute, count, roles, speech
// mute, blacklist, conversation signatures, and conversations shared with the REST API.
const { test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const {
  Event,
  TextMessage,
  Conversation,
  ChatRoom,
  ServiceConversation,
  TemporaryConversation,
  ConversationMemberRole,
} = require('leancloud-realtime');
const { startConfab, next, none, eventually, sleep } = require('../lib/harness');

let srv;
let open = [];
before(async () => {
  srv = await startConfab();
});
after(async () => {
  assert.equal(await srv.stop(), 0, 'confab exits cleanly on SIGTERM');
});
afterEach(async () => {
  const clients = open;
  open = [];
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
});

/** An IM client on its own WebSocket, closed after the test. */
async function client(id, options, server = srv) {
  const c = await server.realtime().createIMClient(id, options);
  open.push(c);
  return c;
}

/** Several clients, in order. */
function clients(...ids) {
  return Promise.all(ids.map((id) => client(id)));
}

const sorted = (a) => a.slice().sort();
const near = (date, ms, slack = 10_000) => date instanceof Date && Math.abs(date.getTime() - ms) < slack;

// ------------------------------------------------------------------------------- conv start

test('createConversation: members with the creator, name, custom attributes (a Date too), createdAt; the invited get `invited`', async () => {
  const [alice, bob] = await clients('cs-alice', 'cs-bob');
  const since = new Date('2021-02-03T04:05:06.789Z');
  const invited = next(bob, Event.INVITED);
  const before = Date.now();
  const conv = await alice.createConversation({ members: ['cs-bob'], name: 'start-1', topic: 'rust', level: 3, since });
  assert.ok(conv instanceof Conversation);
  assert.equal(typeof conv.id, 'string');
  assert.deepEqual(sorted(conv.members), ['cs-alice', 'cs-bob']);
  assert.equal(conv.name, 'start-1');
  assert.equal(conv.get('topic'), 'rust');
  assert.equal(conv.creator, 'cs-alice');
  assert.ok(near(conv.createdAt, before), `createdAt ${conv.createdAt}`);
  assert.equal(conv.updatedAt.getTime(), conv.createdAt.getTime());

  // bob learns of it by the push, and reads it back from the server (conv query)
  const [payload, bobConv] = await invited;
  assert.deepEqual(payload, { invitedBy: 'cs-alice' });
  assert.equal(bobConv.id, conv.id);
  assert.ok(bobConv instanceof Conversation);
  assert.equal(bobConv.name, 'start-1');
  assert.equal(bobConv.get('topic'), 'rust');
  assert.equal(bobConv.get('level'), 3);
  assert.ok(bobConv.get('since') instanceof Date, 'a Date attribute comes back as a Date');
  assert.equal(bobConv.get('since').getTime(), since.getTime());
  assert.equal(bobConv.creator, 'cs-alice');
  assert.deepEqual(sorted(bobConv.members), ['cs-alice', 'cs-bob']);
  assert.equal(bobConv.createdAt.getTime(), conv.createdAt.getTime());

  // a member list without the creator still includes the creator
  const solo = await alice.createConversation({ members: [], name: 'solo' });
  const fetched = await bob.getConversation(solo.id, true);
  assert.deepEqual(fetched.members, ['cs-alice']);
});

test('createConversation unique:true returns the same conversation for the same member set', async () => {
  const [alice, bob] = await clients('cu-alice', 'cu-bob');
  const a = await alice.createConversation({ members: ['cu-bob'], name: 'u', unique: true });
  const b = await alice.createConversation({ members: ['cu-bob'], name: 'u again', unique: true });
  assert.equal(b.id, a.id);
  // the other member, asking the same, gets it too
  const c = await bob.createConversation({ members: ['cu-alice'], unique: true });
  assert.equal(c.id, a.id);
  const fetched = await bob.getConversation(a.id, true);
  assert.equal(fetched.name, 'u', 'the existing conversation is returned, not renamed');
  assert.equal(fetched.get('unique'), true);
  // another member set, or not unique: a new conversation
  const d = await alice.createConversation({ members: ['cu-bob', 'cu-carol'], unique: true });
  assert.notEqual(d.id, a.id);
  const e = await alice.createConversation({ members: ['cu-bob'] });
  assert.notEqual(e.id, a.id);
});

test('createChatRoom gives a ChatRoom; createTemporaryConversation a `_tmp:` id with expiredAt', async () => {
  const [alice, bob] = await clients('cr-alice', 'cr-bob');
  const room = await alice.createChatRoom({ name: 'room-1', topic: 'lobby' });
  assert.ok(room instanceof ChatRoom);
  assert.equal(room.transient, true);
  assert.equal(room.name, 'room-1');
  const seen = await bob.getConversation(room.id, true);
  assert.ok(seen instanceof ChatRoom, 'queried back as a chat room (tr)');
  assert.equal(seen.name, 'room-1');
  assert.equal(seen.get('topic'), 'lobby');

  const invited = next(bob, Event.INVITED);
  const ttl = 3600;
  const tmp = await alice.createTemporaryConversation({ members: ['cr-bob'], ttl });
  assert.ok(tmp instanceof TemporaryConversation);
  assert.match(tmp.id, /^_tmp:/);
  assert.ok(near(tmp.expiredAt, Date.now() + ttl * 1000), `expiredAt ${tmp.expiredAt}`);
  assert.equal(tmp.expired, false);
  assert.deepEqual(sorted(tmp.members), ['cr-alice', 'cr-bob']);
  // bob is told, and fetches it through the tempConvIds query
  const [payload, bobTmp] = await invited;
  assert.equal(payload.invitedBy, 'cr-alice');
  assert.ok(bobTmp instanceof TemporaryConversation);
  assert.equal(bobTmp.id, tmp.id);
  assert.ok(near(bobTmp.expiredAt, Date.now() + ttl * 1000));
  // and they can talk in it
  const got = next(bob, Event.MESSAGE);
  await tmp.send(new TextMessage('tmp hello'));
  const [msg, where] = await got;
  assert.equal(msg.text, 'tmp hello');
  assert.equal(where.id, tmp.id);
});

// ------------------------------------------------------------------------------- conv query

test('conversation queries: equality, members, comparisons, regex, paging, sort, flags, by id', async () => {
  const [alice, bob, viewer] = await clients('q-alice', 'q-bob', 'q-viewer');
  const tag = `run-${crypto.randomBytes(4).toString('hex')}`;
  const day = (d) => new Date(Date.UTC(2022, 0, d));
  const specs = [
    { name: 'qtest-alpha', n: 1, members: ['q-bob'] },
    { name: 'qtest-beta', n: 2, members: ['q-bob', 'q-carol'] },
    { name: 'qtest-gamma', n: 3, members: ['q-carol'] },
    { name: 'qtest-delta', n: 4, members: ['q-bob'] },
    { name: 'qtest-epsilon', n: 5, members: [] },
  ];
  const made = {};
  for (const s of specs) {
    made[s.name] = await alice.createConversation({ members: s.members, name: s.name, tag, n: s.n, day: day(s.n), kind: { level: s.n } });
  }
  const names = (convs) => convs.map((c) => c.name);
  const q = () => alice.getQuery().equalTo('tag', tag);

  // equality on a custom attribute, on name, and on members
  assert.deepEqual(sorted(names(await q().find())), sorted(specs.map((s) => s.name)));
  assert.deepEqual(names(await q().equalTo('name', 'qtest-beta').find()), ['qtest-beta']);
  assert.deepEqual(names(await q().equalTo('m', 'q-carol').ascending('n').find()), ['qtest-beta', 'qtest-gamma']);
  assert.deepEqual(names(await q().containsMembers(['q-bob', 'q-carol']).find()), ['qtest-beta']);
  assert.deepEqual(names(await q().containsAll('m', ['q-bob']).ascending('n').find()), ['qtest-alpha', 'qtest-beta', 'qtest-delta']);
  assert.deepEqual(names(await q().withMembers(['q-bob'], true).ascending('n').find()), ['qtest-alpha', 'qtest-delta']);
  assert.deepEqual(names(await q().containedIn('name', ['qtest-alpha', 'qtest-gamma', 'nope']).ascending('n').find()), ['qtest-alpha', 'qtest-gamma']);
  assert.deepEqual(names(await q().equalTo('kind.level', 4).find()), ['qtest-delta'], 'dotted keys reach nested values');

  // comparisons on a number and on a Date attribute
  assert.deepEqual(names(await q().lessThan('n', 3).ascending('n').find()), ['qtest-alpha', 'qtest-beta']);
  assert.deepEqual(names(await q().greaterThan('n', 3).ascending('n').find()), ['qtest-delta', 'qtest-epsilon']);
  assert.deepEqual(names(await q().greaterThanOrEqualTo('n', 2).lessThanOrEqualTo('n', 3).ascending('n').find()), ['qtest-beta', 'qtest-gamma']);
  assert.deepEqual(names(await q().notEqualTo('n', 1).lessThan('n', 3).find()), ['qtest-beta']);
  assert.deepEqual(names(await q().greaterThan('day', day(4)).find()), ['qtest-epsilon']);
  assert.deepEqual(names(await q().equalTo('day', day(2)).find()), ['qtest-beta']);
  assert.deepEqual(names(await q().lessThan('createdAt', new Date(Date.now() + 60_000)).equalTo('n', 1).find()), ['qtest-alpha']);

  // contains / startsWith / endsWith (the SDK sends Java-quoted regexes: \Q…\E)
  assert.deepEqual(names(await q().contains('name', 'lph').find()), ['qtest-alpha']);
  assert.deepEqual(names(await q().startsWith('name', 'qtest-g').find()), ['qtest-gamma']);
  assert.deepEqual(names(await q().endsWith('name', 'ta').ascending('n').find()), ['qtest-beta', 'qtest-delta']);
  assert.deepEqual(names(await q().contains('name', '.').find()), [], 'quoted text is literal');
  assert.deepEqual(names(await q().matches('name', /^QTEST-E/i).find()), ['qtest-epsilon']);

  // exists / doesNotExist
  assert.equal((await q().exists('kind').find()).length, 5);
  assert.equal((await q().doesNotExist('kind').find()).length, 0);

  // sort, limit, skip
  assert.deepEqual(names(await q().ascending('n').limit(2).find()), ['qtest-alpha', 'qtest-beta']);
  assert.deepEqual(names(await q().ascending('n').skip(2).limit(2).find()), ['qtest-gamma', 'qtest-delta']);
  assert.deepEqual(names(await q().ascending('n').skip(4).limit(2).find()), ['qtest-epsilon']);
  assert.deepEqual(names(await q().descending('n').find()), ['qtest-epsilon', 'qtest-delta', 'qtest-gamma', 'qtest-beta', 'qtest-alpha']);
  assert.deepEqual(names(await q().descending('name').limit(1).find()), ['qtest-gamma']);
  assert.deepEqual(names(await q().ascending('name').limit(1).find()), ['qtest-alpha']);

  // withLastMessagesRefreshed: the last message and its time come with the conversation
  const sent = await made['qtest-delta'].send(new TextMessage('last words'));
  const [withLast] = await viewer.getQuery().equalTo('tag', tag).equalTo('n', 4).find();
  assert.ok(withLast.lastMessageAt instanceof Date, 'lm is set after a message');
  const viewerLast = await bob.getQuery().equalTo('tag', tag).equalTo('n', 4).withLastMessagesRefreshed().find();
  assert.equal(viewerLast[0].lastMessage.id, sent.id);
  assert.equal(viewerLast[0].lastMessage.text, 'last words');
  assert.equal(viewerLast[0].lastMessage.from, 'q-alice');
  assert.equal(viewerLast[0].lastMessage.timestamp.getTime(), sent.timestamp.getTime());

  // compact: no member lists (seen by a client that has nothing cached)
  const fresh = await client('q-fresh');
  const compact = await fresh.getQuery().equalTo('tag', tag).equalTo('n', 2).compact().find();
  assert.equal(compact.length, 1);
  assert.deepEqual(compact[0].members, []);
  const full = await viewer.getQuery().equalTo('tag', tag).equalTo('n', 2).find();
  assert.deepEqual(sorted(full[0].members), ['q-alice', 'q-bob', 'q-carol']);

  // by id, and several by id
  const one = await viewer.getConversation(made['qtest-gamma'].id, true);
  assert.equal(one.name, 'qtest-gamma');
  assert.equal(one.get('n'), 3);
  const several = await viewer.getConversations([made['qtest-alpha'].id, made['qtest-epsilon'].id], true);
  assert.deepEqual(names(several), ['qtest-alpha', 'qtest-epsilon']);
  assert.equal(await viewer.getConversation('123456789012345', true), null, 'an unknown id is null');
});

test('chat room and service conversation queries; temporary conversations by id', async () => {
  const [alice, bob] = await clients('qk-alice', 'qk-bob');
  const tag = `run-${crypto.randomBytes(4).toString('hex')}`;
  const room = await alice.createChatRoom({ name: 'qk-room', tag });
  const conv = await alice.createConversation({ members: ['qk-bob'], name: 'qk-conv', tag });
  const svc = await srv.rest('POST', '/1.2/rtm/service-conversations', { name: 'qk-service', tag });
  assert.equal(svc.status, 200, JSON.stringify(svc.body));
  const svcId = svc.body.objectId;
  assert.ok(svcId);

  const rooms = await bob.getChatRoomQuery().equalTo('tag', tag).find();
  assert.deepEqual(rooms.map((c) => c.id), [room.id]);
  assert.ok(rooms[0] instanceof ChatRoom);

  const services = await bob.getServiceConversationQuery().equalTo('tag', tag).find();
  assert.deepEqual(services.map((c) => c.id), [svcId]);
  assert.ok(services[0] instanceof ServiceConversation);
  assert.equal(services[0].system, true);
  assert.equal(services[0].name, 'qk-service');

  // the plain query sees all three kinds, each as its class
  const all = await bob.getQuery().equalTo('tag', tag).find();
  const byId = Object.fromEntries(all.map((c) => [c.id, c]));
  assert.ok(byId[room.id] instanceof ChatRoom);
  assert.ok(byId[svcId] instanceof ServiceConversation);
  assert.ok(byId[conv.id] instanceof Conversation);

  // temporary conversations go through tempConvIds, alone or with others
  const tmp = await alice.createTemporaryConversation({ members: ['qk-bob'], ttl: 600 });
  const carol = await client('qk-carol');
  const t = await carol.getConversation(tmp.id);
  assert.ok(t instanceof TemporaryConversation);
  assert.equal(t.id, tmp.id);
  assert.ok(near(t.expiredAt, Date.now() + 600_000));
  assert.deepEqual(sorted(t.members), ['qk-alice', 'qk-bob']);
  const mixed = await client('qk-dave');
  const both = await mixed.getConversations([conv.id, tmp.id]);
  assert.equal(both[0].id, conv.id);
  assert.ok(both[1] instanceof TemporaryConversation);
  assert.equal(both[1].id, tmp.id);
  assert.equal(await mixed.getConversation('_tmp:123456789', true), null, 'an unknown temporary id is null');
});

// ------------------------------------------------------------------------------- members

test('add / remove with pushes: invited + membersjoined, kicked + membersleft; partial results', async () => {
  const [alice, bob, carol] = await clients('m-alice', 'm-bob', 'm-carol');
  const conv = await alice.createConversation({ members: ['m-bob'], name: 'members' });
  await bob.getConversation(conv.id); // bob has it cached (he also got `invited`)

  const bobJoined = next(bob, Event.MEMBERS_JOINED);
  const carolInvited = next(carol, Event.INVITED);
  const added = await conv.add(['m-carol']);
  assert.deepEqual(added, { successfulClientIds: ['m-carol'], failures: [] });
  assert.deepEqual(sorted(conv.members), ['m-alice', 'm-bob', 'm-carol']);
  const [joined, joinedConv] = await bobJoined;
  assert.deepEqual(joined, { invitedBy: 'm-alice', members: ['m-carol'] });
  assert.equal(joinedConv.id, conv.id);
  assert.deepEqual(sorted(joinedConv.members), ['m-alice', 'm-bob', 'm-carol'], 'the SDK adds them locally');
  const [inv, carolConv] = await carolInvited;
  assert.deepEqual(inv, { invitedBy: 'm-alice' });
  assert.equal(carolConv.id, conv.id);
  assert.deepEqual(sorted(carolConv.members), ['m-alice', 'm-bob', 'm-carol']);
  // the same push also reaches the conversation object
  const convEvent = next(joinedConv, Event.MEMBERS_JOINED);
  await conv.add('m-dave');
  assert.deepEqual((await convEvent)[0], { invitedBy: 'm-alice', members: ['m-dave'] });

  // adding an existing member is harmless
  assert.deepEqual(await conv.add(['m-bob']), { successfulClientIds: ['m-bob'], failures: [] });

  // a plain member cannot remove others where there is an owner: the whole call is refused
  const bobConv = await bob.getConversation(conv.id);
  const err = await bobConv.remove(['m-carol']).then(() => null, (e) => e);
  assert.ok(err, 'remove by a plain member fails');
  assert.equal(err.code, 4320);
  assert.deepEqual(sorted((await alice.getConversation(conv.id, true)).members), ['m-alice', 'm-bob', 'm-carol', 'm-dave']);

  // the owner removes: the removed hear `kicked`, the rest `membersleft`
  const carolKicked = next(carol, Event.KICKED);
  const bobLeft = next(bob, Event.MEMBERS_LEFT);
  const removed = await conv.remove(['m-carol']);
  assert.deepEqual(removed, { successfulClientIds: ['m-carol'], failures: [] });
  assert.deepEqual(sorted(conv.members), ['m-alice', 'm-bob', 'm-dave']);
  const [kicked, kickedConv] = await carolKicked;
  assert.deepEqual(kicked, { kickedBy: 'm-alice' });
  assert.equal(kickedConv.id, conv.id);
  assert.ok(!kickedConv.members.includes('m-carol'));
  const [left, leftConv] = await bobLeft;
  assert.deepEqual(left, { kickedBy: 'm-alice', members: ['m-carol'] });
  assert.deepEqual(sorted(leftConv.members), ['m-alice', 'm-bob', 'm-dave']);
  // carol, no longer a member, cannot send
  const sendErr = await kickedConv.send(new TextMessage('still here?')).then(() => null, (e) => e);
  assert.ok(sendErr && sendErr.code, 'a removed member cannot send');
});

test('join a conversation one is not in, then quit', async () => {
  const [alice, bob, eve] = await clients('j-alice', 'j-bob', 'j-eve');
  const conv = await alice.createConversation({ members: ['j-bob'], name: 'open door' });
  await bob.getConversation(conv.id);
  const eveConv = await eve.getConversation(conv.id);
  assert.ok(!eveConv.members.includes('j-eve'));

  const aliceJoined = next(alice, Event.MEMBERS_JOINED);
  const bobJoined = next(bob, Event.MEMBERS_JOINED);
  const same = await eveConv.join();
  assert.equal(same, eveConv);
  assert.ok(eveConv.members.includes('j-eve'));
  assert.deepEqual((await aliceJoined)[0], { invitedBy: 'j-eve', members: ['j-eve'] });
  assert.deepEqual((await bobJoined)[0], { invitedBy: 'j-eve', members: ['j-eve'] });
  assert.deepEqual(sorted(conv.members), ['j-alice', 'j-bob', 'j-eve']);
  // a member now: eve can send, and bob receives
  const bobGot = next(bob, Event.MESSAGE);
  await eveConv.send(new TextMessage('hi all'));
  assert.equal((await bobGot)[0].from, 'j-eve');

  const aliceLeft = next(alice, Event.MEMBERS_LEFT);
  const back = await eveConv.quit();
  assert.equal(back, eveConv);
  assert.ok(!eveConv.members.includes('j-eve'));
  assert.deepEqual((await aliceLeft)[0], { kickedBy: 'j-eve', members: ['j-eve'] });
  assert.deepEqual(sorted((await bob.getConversation(conv.id, true)).members), ['j-alice', 'j-bob']);

  // a plain member may always leave, even with an owner
  const bobQuit = next(alice, Event.MEMBERS_LEFT);
  await (await bob.getConversation(conv.id)).quit();
  assert.deepEqual((await bobQuit)[0], { kickedBy: 'j-bob', members: ['j-bob'] });
});

// ------------------------------------------------------------------------------- update

test('update: set name and attributes (dotted keys), save → updatedAt; members get `infoupdated`', async () => {
  const [alice, bob] = await clients('u-alice', 'u-bob');
  const conv = await alice.createConversation({ members: ['u-bob'], name: 'before', color: { text: '#000', background: '#fff' } });
  const bobConv = await bob.getConversation(conv.id);
  const created = conv.updatedAt.getTime();
  await sleep(5);

  const info = next(bobConv, Event.INFO_UPDATED);
  const clientInfo = next(bob, Event.CONVERSATION_INFO_UPDATED);
  conv.set('name', 'after');
  conv.set('color.text', '#333');
  conv.set('pinned', true);
  assert.equal(conv.name, 'after', 'pending values read back before save');
  const saved = await conv.save();
  assert.equal(saved, conv);
  assert.ok(conv.updatedAt instanceof Date && conv.updatedAt.getTime() > created, `updatedAt ${conv.updatedAt}`);
  assert.equal(conv.name, 'after');
  assert.deepEqual(conv.get('color'), { text: '#333', background: '#fff' });

  const [payload] = await info;
  assert.equal(payload.updatedBy, 'u-alice');
  assert.deepEqual(payload.attributes, { name: 'after', 'color.text': '#333', pinned: true });
  const [cpayload, cconv] = await clientInfo;
  assert.equal(cpayload.updatedBy, 'u-alice');
  assert.equal(cconv, bobConv);
  // bob's copy applied the dotted key as a nested update
  assert.equal(bobConv.name, 'after');
  assert.deepEqual(bobConv.get('color'), { text: '#333', background: '#fff' });
  assert.equal(bobConv.get('pinned'), true);

  // the server kept the nested value and the untouched sibling
  const viewer = await client('u-viewer');
  const stored = await viewer.getConversation(conv.id, true);
  assert.equal(stored.name, 'after');
  assert.deepEqual(stored.get('color'), { text: '#333', background: '#fff' });
  assert.equal(stored.updatedAt.getTime(), conv.updatedAt.getTime());

  // a Date attribute, and a whole object replaced; a member (not only the owner) may update
  const when = new Date('2030-01-01T00:00:00.000Z');
  const aliceInfo = next(conv, Event.INFO_UPDATED);
  bobConv.set('due', when);
  bobConv.set('color', { text: '#111' });
  await bobConv.save();
  const [byBob] = await aliceInfo;
  assert.equal(byBob.updatedBy, 'u-bob');
  assert.ok(byBob.attributes.due instanceof Date);
  assert.equal(byBob.attributes.due.getTime(), when.getTime());
  assert.deepEqual(conv.get('color'), { text: '#111' });
  const again = await viewer.getConversation(conv.id, true);
  assert.deepEqual(again.get('color'), { text: '#111' });
  assert.equal(again.get('due').getTime(), when.getTime());

  // nothing pending: save() sends nothing
  const unchanged = conv.updatedAt;
  await conv.save();
  assert.equal(conv.updatedAt, unchanged);
});

// ------------------------------------------------------------------------------- mute, count

test('mute / unmute: muted and mutedMembers; visible over REST and in queries', async () => {
  const [alice, bob] = await clients('mu-alice', 'mu-bob');
  const conv = await alice.createConversation({ members: ['mu-bob'], name: 'quiet' });
  assert.equal(conv.muted, false);
  await conv.mute();
  assert.equal(conv.muted, true);
  assert.deepEqual(conv.mutedMembers, ['mu-alice']);
  const rest = await srv.rest('GET', `/1.2/rtm/conversations/${conv.id}/mutes`);
  assert.equal(rest.status, 200);
  assert.deepEqual(rest.body.result, ['mu-alice']);
  const seen = await bob.getConversation(conv.id, true);
  assert.deepEqual(seen.mutedMembers, ['mu-alice']);

  await conv.unmute();
  assert.equal(conv.muted, false);
  assert.deepEqual(conv.mutedMembers, []);
  assert.deepEqual((await srv.rest('GET', `/1.2/rtm/conversations/${conv.id}/mutes`)).body.result, []);
  const seen2 = await bob.getConversation(conv.id, true);
  assert.deepEqual(seen2.mutedMembers, []);
});

test('count: members of a conversation; present members of a chat room', async () => {
  const [alice, bob, carol] = await clients('n-alice', 'n-bob', 'n-carol');
  const conv = await alice.createConversation({ members: ['n-bob', 'n-carol'] });
  assert.equal(await conv.count(), 3);
  await conv.remove('n-carol');
  assert.equal(await conv.count(), 2);

  const room = await alice.createChatRoom({ name: 'count-room' });
  assert.equal(await room.count(), 1, 'the creator is in the room');
  const bobRoom = await bob.getConversation(room.id);
  await bobRoom.join();
  const carolRoom = await carol.getConversation(room.id);
  await carolRoom.join();
  assert.equal(await room.count(), 3);
  await carolRoom.quit();
  assert.equal(await bobRoom.count(), 2);
});

// ------------------------------------------------------------------------------- roles

test('member roles: updateMemberRole, getAllMemberInfo/getMemberInfo, `memberinfoupdated`; members cannot change roles', async () => {
  const [alice, bob, carol] = await clients('r-alice', 'r-bob', 'r-carol');
  const conv = await alice.createConversation({ members: ['r-bob', 'r-carol'], name: 'roles' });
  const bobConv = await bob.getConversation(conv.id);
  const carolConv = await carol.getConversation(conv.id);

  // before any change (member info comes over REST with the session token)
  const initial = await conv.getAllMemberInfo();
  assert.deepEqual(
    Object.fromEntries(initial.map((i) => [i.memberId, i.role])),
    { 'r-alice': ConversationMemberRole.OWNER, 'r-bob': ConversationMemberRole.MEMBER, 'r-carol': ConversationMemberRole.MEMBER },
  );
  assert.equal(initial.find((i) => i.memberId === 'r-alice').isOwner, true);

  // a plain member cannot change roles
  const denied = await carolConv.updateMemberRole('r-bob', ConversationMemberRole.MANAGER).then(() => null, (e) => e);
  assert.ok(denied);
  assert.equal(denied.code, 4320);
  // nobody is made owner (refused by the SDK itself)
  await assert.rejects(conv.updateMemberRole('r-bob', ConversationMemberRole.OWNER), { code: 5130 });

  const bobHears = next(bob, Event.MEMBER_INFO_UPDATED);
  const carolHears = next(carolConv, Event.MEMBER_INFO_UPDATED);
  const res = await conv.updateMemberRole('r-bob', ConversationMemberRole.MANAGER);
  assert.equal(res, conv);
  const [p1, c1] = await bobHears;
  assert.equal(c1.id, conv.id);
  assert.equal(p1.member, 'r-bob');
  assert.equal(p1.updatedBy, 'r-alice');
  assert.equal(p1.memberInfo.role, ConversationMemberRole.MANAGER);
  assert.equal(p1.memberInfo.memberId, 'r-bob');
  const [p2] = await carolHears;
  assert.equal(p2.memberInfo.role, ConversationMemberRole.MANAGER);

  // read back, fresh from the server
  const all = await conv.getAllMemberInfo({ noCache: true });
  assert.deepEqual(
    Object.fromEntries(all.map((i) => [i.memberId, i.role])),
    { 'r-alice': 'Owner', 'r-bob': 'Manager', 'r-carol': 'Member' },
  );
  const viewerCarol = await carolConv.getMemberInfo('r-bob');
  assert.equal(viewerCarol.role, 'Manager');
  const fresh = await client('r-dave');
  await conv.add('r-dave');
  const daveConv = await fresh.getConversation(conv.id, true);
  assert.equal((await daveConv.getMemberInfo('r-bob')).role, 'Manager');
  assert.equal((await daveConv.getMemberInfo('r-carol')).role, 'Member');

  // a manager may remove a plain member
  assert.deepEqual(await bobConv.remove('r-dave'), { successfulClientIds: ['r-dave'], failures: [] });

  // and back to member
  const back = next(carolConv, Event.MEMBER_INFO_UPDATED);
  await conv.updateMemberRole('r-bob', ConversationMemberRole.MEMBER);
  assert.equal((await back)[0].memberInfo.role, 'Member');
  assert.equal((await conv.getAllMemberInfo({ noCache: true })).find((i) => i.memberId === 'r-bob').role, 'Member');
  const denied2 = await bobConv.remove('r-carol').then(() => null, (e) => e);
  assert.equal(denied2 && denied2.code, 4320, 'no longer a manager');
});

// ------------------------------------------------------------------------------- speech mute

test('speech mute: muteMembers / unmuteMembers / queryMutedMembers with paging; pushes; a muted member cannot send (4315)', async () => {
  const [alice, bob, carol] = await clients('s-alice', 's-bob', 's-carol');
  const conv = await alice.createConversation({ members: ['s-bob', 's-carol', 's-dave'], name: 'shutup' });
  const bobConv = await bob.getConversation(conv.id);
  const carolConv = await carol.getConversation(conv.id);

  // a plain member may not mute others
  const denied = await carolConv.muteMembers('s-bob').then(() => null, (e) => e);
  assert.equal(denied && denied.code, 4320);

  const bobMuted = next(bob, Event.MUTED);
  const carolSees = next(carol, Event.MEMBERS_MUTED);
  const res = await conv.muteMembers(['s-bob']);
  assert.deepEqual(res, { successfulClientIds: ['s-bob'], failures: [] });
  const [mp, mconv] = await bobMuted;
  assert.deepEqual(mp, { mutedBy: 's-alice' });
  assert.equal(mconv.id, conv.id);
  const [sp] = await carolSees;
  assert.deepEqual(sp, { mutedBy: 's-alice', members: ['s-bob'] });

  const sendErr = await bobConv.send(new TextMessage('let me talk')).then(() => null, (e) => e);
  assert.ok(sendErr, 'a muted member cannot send');
  assert.equal(sendErr.code, 4315);
  await carolConv.send(new TextMessage('I still can'));

  // a non-member is a failure, not an error
  const partial = await conv.muteMembers(['s-carol', 's-nobody', 's-dave']);
  assert.deepEqual(sorted(partial.successfulClientIds), ['s-carol', 's-dave']);
  assert.equal(partial.failures.length, 1);
  assert.deepEqual(partial.failures[0].clientIds, ['s-nobody']);
  assert.equal(partial.failures[0].code, 4317);

  // paging
  const p1 = await conv.queryMutedMembers({ limit: 2 });
  assert.equal(p1.results.length, 2);
  assert.ok(p1.next, 'a full page has a next cursor');
  const p2 = await conv.queryMutedMembers({ limit: 2, next: p1.next });
  assert.deepEqual(sorted([...p1.results, ...p2.results]), ['s-bob', 's-carol', 's-dave']);
  assert.equal(p2.results.length, 1);
  assert.ok(!p2.next);
  const everyone = await conv.queryMutedMembers();
  assert.deepEqual(sorted(everyone.results), ['s-bob', 's-carol', 's-dave']);

  const bobUnmuted = next(bob, Event.UNMUTED);
  const carolSeesUn = next(carolConv, Event.MEMBERS_UNMUTED);
  assert.deepEqual(await conv.unmuteMembers('s-bob'), { successfulClientIds: ['s-bob'], failures: [] });
  assert.deepEqual((await bobUnmuted)[0], { unmutedBy: 's-alice' });
  assert.deepEqual((await carolSeesUn)[0], { unmutedBy: 's-alice', members: ['s-bob'] });
  const sent = await bobConv.send(new TextMessage('thanks'));
  assert.ok(sent.id);
  assert.deepEqual(sorted((await conv.queryMutedMembers()).results), ['s-carol', 's-dave']);
});

// ------------------------------------------------------------------------------- blacklist

test('blacklist: blockMembers / unblockMembers / queryBlockedMembers; pushes; the blocked cannot join until unblocked', async () => {
  const [alice, bob, carol] = await clients('b-alice', 'b-bob', 'b-carol');
  const conv = await alice.createConversation({ members: ['b-bob', 'b-carol'], name: 'blacklist' });
  const bobConv = await bob.getConversation(conv.id);
  const carolConv = await carol.getConversation(conv.id);

  const denied = await bobConv.blockMembers('b-carol').then(() => null, (e) => e);
  assert.equal(denied && denied.code, 4320, 'a plain member may not block');

  const carolBlocked = next(carol, Event.BLOCKED);
  const bobSees = next(bobConv, Event.MEMBERS_BLOCKED);
  const res = await conv.blockMembers(['b-carol', 'b-outsider']);
  assert.deepEqual(sorted(res.successfulClientIds), ['b-carol', 'b-outsider']);
  assert.deepEqual(res.failures, []);
  const [bp, bconv] = await carolBlocked;
  assert.deepEqual(bp, { blockedBy: 'b-alice' });
  assert.equal(bconv.id, conv.id);
  const [mb] = await bobSees;
  assert.equal(mb.blockedBy, 'b-alice');
  assert.deepEqual(sorted(mb.members), ['b-carol', 'b-outsider']);

  // blocked members are out
  assert.deepEqual(sorted((await alice.getConversation(conv.id, true)).members), ['b-alice', 'b-bob']);
  const q = await conv.queryBlockedMembers();
  assert.deepEqual(sorted(q.results), ['b-carol', 'b-outsider']);
  const page = await conv.queryBlockedMembers({ limit: 1 });
  assert.equal(page.results.length, 1);
  assert.ok(page.next);
  const page2 = await conv.queryBlockedMembers({ limit: 1, next: page.next });
  assert.deepEqual(sorted([...page.results, ...page2.results]), ['b-carol', 'b-outsider']);

  // carol cannot come back on her own, nor be added
  const joinErr = await carolConv.join().then(() => null, (e) => e);
  assert.ok(joinErr, 'a blocked client cannot join');
  assert.equal(joinErr.code, 4315);
  const added = await conv.add(['b-carol', 'b-dave']);
  assert.deepEqual(added.successfulClientIds, ['b-dave']);
  assert.equal(added.failures.length, 1);
  assert.equal(added.failures[0].code, 4315);
  assert.deepEqual(added.failures[0].clientIds, ['b-carol']);
  const sendErr = await carolConv.send(new TextMessage('hello?')).then(() => null, (e) => e);
  assert.ok(sendErr && sendErr.code, 'a blocked client cannot send');

  // unblocked: she may join again
  const carolUnblocked = next(carol, Event.UNBLOCKED);
  const bobSeesUn = next(bob, Event.MEMBERS_UNBLOCKED);
  const un = await conv.unblockMembers('b-carol');
  assert.deepEqual(un, { successfulClientIds: ['b-carol'], failures: [] });
  assert.deepEqual((await carolUnblocked)[0], { unblockedBy: 'b-alice' });
  assert.deepEqual((await bobSeesUn)[0], { unblockedBy: 'b-alice', members: ['b-carol'] });
  assert.deepEqual((await conv.queryBlockedMembers()).results, ['b-outsider']);
  await carolConv.join();
  assert.ok(carolConv.members.includes('b-carol'));
  const bobGot = next(bob, Event.MESSAGE);
  await carolConv.send(new TextMessage('back'));
  assert.equal((await bobGot)[0].text, 'back');
});

// ------------------------------------------------------------------------------- signatures

test('conversation signatures: required when the app says so; a factory signing per LeanCloud docs passes', async () => {
  const signed = await startConfab({ limits: { lc_sign_conversation: 'true' } });
  try {
    const { app_id: appId, master_key: masterKey } = signed.app.leancloud;
    const hmac = (key, msg) => crypto.createHmac('sha1', key).update(msg).digest('hex');
    const calls = [];
    const factory = (key) => (conversationId, clientId, members, action) => {
      if (key === masterKey) calls.push([conversationId, clientId, members.slice(), action]);
      const timestamp = Date.now();
      const nonce = crypto.randomBytes(8).toString('hex');
      const ids = members.slice().sort().join(':');
      const msg = conversationId
        ? `${appId}:${clientId}:${conversationId}:${ids}:${timestamp}:${nonce}:${action === 'add' ? 'invite' : 'kick'}`
        : `${appId}:${clientId}:${ids}:${timestamp}:${nonce}`;
      return { signature: hmac(key, msg), timestamp, nonce };
    };
    const good = await client('sig-alice', { conversationSignatureFactory: factory(masterKey) }, signed);
    const plain = await client('sig-plain', undefined, signed);
    const forger = await client('sig-forger', { conversationSignatureFactory: factory('not-the-master-key') }, signed);

    // without a signature, or with a wrong one: 4302
    await assert.rejects(plain.createConversation({ members: ['sig-bob'] }), { code: 4302 });
    await assert.rejects(forger.createConversation({ members: ['sig-bob'] }), { code: 4302 });

    // signed: create, add, remove
    const conv = await good.createConversation({ members: ['sig-bob', 'sig-carol'], name: 'signed' });
    assert.deepEqual(calls[0], [null, 'sig-alice', ['sig-alice', 'sig-bob', 'sig-carol'], 'create']);
    assert.deepEqual(sorted(conv.members), ['sig-alice', 'sig-bob', 'sig-carol']);
    const added = await conv.add(['sig-erin', 'sig-dave']);
    assert.deepEqual(sorted(added.successfulClientIds), ['sig-dave', 'sig-erin']);
    assert.deepEqual(calls[1], [conv.id, 'sig-alice', ['sig-dave', 'sig-erin'], 'add']);
    const removed = await conv.remove('sig-dave');
    assert.deepEqual(removed.successfulClientIds, ['sig-dave']);
    assert.deepEqual(calls[2], [conv.id, 'sig-alice', ['sig-dave'], 'remove']);

    // unsigned add/remove/join on an existing conversation: 4302
    const plainConv = await plain.getConversation(conv.id);
    await assert.rejects(plainConv.join(), { code: 4302 });
    const forgedConv = await forger.getConversation(conv.id);
    await assert.rejects(forgedConv.add('sig-zed'), { code: 4302 });
    const aliceUnsigned = await client('sig-bob', undefined, signed);
    const bobConv = await aliceUnsigned.getConversation(conv.id);
    await assert.rejects(bobConv.quit(), { code: 4302 });
    assert.deepEqual(sorted((await good.getConversation(conv.id, true)).members), ['sig-alice', 'sig-bob', 'sig-carol', 'sig-erin']);
  } finally {
    const clientsHere = open;
    open = [];
    await Promise.all(clientsHere.map((c) => c.close().catch(() => {})));
    assert.equal(await signed.stop(), 0);
  }
});

// ------------------------------------------------------------------------------- cross-face

test('cross-face: a conversation made over REST is usable from the SDK; REST member changes are pushed', async () => {
  const [alice, bob, carol] = await clients('x-alice', 'x-bob', 'x-carol');
  const aliceInvited = next(alice, Event.INVITED);
  const made = await srv.rest('POST', '/1.2/rtm/conversations', { name: 'from rest', m: ['x-alice', 'x-bob'], topic: 'x' });
  assert.equal(made.status, 200, JSON.stringify(made.body));
  const id = made.body.objectId;
  assert.ok(id);
  const [inv, invConv] = await aliceInvited;
  assert.equal(invConv.id, id);
  assert.ok(inv.invitedBy == null, 'made by the app server: no inviting client');

  const conv = await alice.getConversation(id, true);
  assert.ok(conv instanceof Conversation);
  assert.equal(conv.name, 'from rest');
  assert.equal(conv.get('topic'), 'x');
  assert.deepEqual(sorted(conv.members), ['x-alice', 'x-bob']);

  const bobGot = next(bob, Event.MESSAGE);
  const sent = await conv.send(new TextMessage('over the socket'));
  const [msg, where] = await bobGot;
  assert.equal(msg.id, sent.id);
  assert.equal(where.id, id);
  const history = await srv.rest('GET', `/1.2/rtm/conversations/${id}/messages?limit=10`);
  assert.equal(history.status, 200);
  assert.ok(JSON.stringify(history.body).includes('over the socket'));

  // members added and removed over REST reach the SDK clients
  const aliceJoined = next(conv, Event.MEMBERS_JOINED);
  const carolInvited = next(carol, Event.INVITED);
  const add = await srv.rest('POST', `/1.2/rtm/conversations/${id}/members`, { client_ids: ['x-carol'] });
  assert.equal(add.status, 200, JSON.stringify(add.body));
  const [joined] = await aliceJoined;
  assert.deepEqual(joined.members, ['x-carol']);
  assert.deepEqual(sorted(conv.members), ['x-alice', 'x-bob', 'x-carol']);
  const [, carolConv] = await carolInvited;
  assert.equal(carolConv.id, id);

  const aliceLeft = next(conv, Event.MEMBERS_LEFT);
  const carolKicked = next(carol, Event.KICKED);
  // (Node sends a DELETE body only with an explicit Content-Length)
  const body = { client_ids: ['x-carol'] };
  const rm = await srv.rest('DELETE', `/1.2/rtm/conversations/${id}/members`, body, {
    headers: { 'Content-Length': Buffer.byteLength(JSON.stringify(body)) },
  });
  assert.equal(rm.status, 200, JSON.stringify(rm.body));
  assert.deepEqual((await aliceLeft)[0].members, ['x-carol']);
  await carolKicked;

  // an SDK update is visible over REST
  conv.set('topic', 'y');
  await conv.save();
  const listed = await srv.rest('GET', `/1.2/rtm/conversations?where=${encodeURIComponent(JSON.stringify({ objectId: id }))}`);
  assert.equal(listed.status, 200);
  assert.equal(listed.body.results[0].topic, 'y');
  // in a conversation without an owner, any member may remove another
  const bobConv = await bob.getConversation(id);
  assert.deepEqual(await bobConv.remove('x-alice'), { successfulClientIds: ['x-alice'], failures: [] });
});

void none;
void eventually;
