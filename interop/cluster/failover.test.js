'use strict';
// A node of the three-node cluster (harness.js) killed with SIGKILL while the official SDK's clients
// chat through the load balancer: nothing acknowledged is lost, the clients reconnect (through the
// balancer, to another node) and find every acknowledged message, the dead node's sessions leave
// the cluster's presence, and the node restarted with the same id rejoins.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { TextMessage, Event } = require('leancloud-realtime');
const { next, sleep, eventually } = require('../lib/harness');
const { startCluster, NODE_IDS } = require('./harness');

let cluster;
let victim; // the id of the node killed by the first test, restarted by the second

before(async () => {
  cluster = await startCluster('failover');
});

after(async () => {
  if (!cluster) return;
  const codes = await cluster.stop();
  assert.deepEqual(codes, { 1: 0, 2: 0, 3: 0 }, 'every node (the restarted one too) exits cleanly on SIGTERM');
});

/** The online ones of `ids`, as REST check-online on node `at` answers. */
async function online(at, ids) {
  const r = await cluster.rest(at, 'POST', '/1.2/rtm/clients/check-online', { client_ids: ids });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.results.slice().sort();
}

/** Every message `client` receives live from now on, by id. */
function received(client) {
  const ids = new Set();
  client.on(Event.MESSAGE, (m) => ids.add(m.id));
  return ids;
}

/**
 * `conv`'s client sends a message every few milliseconds until `stop()`; `acked` holds the ids
 * of those the server acknowledged. A send in flight when the connection drops is left to the
 * SDK (it times out); whether that message was kept or not, it was never acknowledged.
 */
function keepSending(conv, label) {
  const acked = [];
  let stopped = false;
  const loop = (async () => {
    for (let i = 0; !stopped; i++) {
      try {
        const m = await conv.send(new TextMessage(`${label} ${i}`));
        acked.push(m.id);
      } catch (_) {
        return; // the connection went away under this send
      }
      await sleep(20);
    }
  })();
  return { acked, stop: () => (stopped = true), loop };
}

/** clients[from] sends in its conversation `convs[from]`, and clients[to] receives that message live. */
async function chat(clients, convs, from, to, label) {
  const got = next(clients[to], Event.MESSAGE, 5000);
  const sent = await convs[from].send(new TextMessage(`${label}, from ${clients[from].id}`));
  const [m] = await got;
  assert.equal(m.id, sent.id, `${clients[to].id} got ${clients[from].id}'s message ${label}`);
}

/** Every message id of `conv` the client's SDK finds in its history (one page of up to 1000). */
async function historyIds(conv) {
  const msgs = await conv.queryMessages({ limit: 1000 });
  return new Set(msgs.map((m) => m.id));
}

test('a node killed (SIGKILL) under chatting clients: nothing acknowledged is lost, its clients reconnect to another node, find it all and chat again', async () => {
  // four clients through the balancer: in turn on nodes 1, 2, 3, 1 (each WebSocket is a connection)
  const ids = ['fo-a', 'fo-b', 'fo-c', 'fo-d'];
  const clients = [];
  for (const id of ids) clients.push(await cluster.realtime('lb').createIMClient(id));
  const on = clients.map((c) => cluster.nodeOf(c));
  assert.ok(on.every((n) => NODE_IDS.includes(n)), `each client is on a node: ${on}`);
  victim = on[0];
  const moving = clients.filter((_, i) => on[i] === victim);
  const staying = clients.filter((_, i) => on[i] !== victim);
  assert.ok(staying.length > 0 && moving.length > 0, `clients on the victim ${victim} and elsewhere: ${on}`);
  // and one client straight on the victim (not through the balancer): it cannot move, so the
  // cluster must forget its session when the node's heartbeat stops
  const stranded = await cluster.realtime(victim).createIMClient('fo-stranded');
  const survivor = NODE_IDS.find((n) => n !== victim);
  await eventually(async () => (await online(survivor, ['fo-stranded'])).length === 1, 5000);

  const [a] = clients;
  const convA = await a.createConversation({ members: ids.slice(1), name: 'through the balancer' });
  const convs = await Promise.all(clients.map((c) => c.getConversation(convA.id)));
  const live = clients.map(received);
  // a client on the victim and one elsewhere send all the time; the victim dies meanwhile
  const senders = [keepSending(convs[0], 'from a'), keepSending(convs[clients.indexOf(staying[0])], 'from a stayer')];
  await eventually(() => senders.every((s) => s.acked.length >= 5), 10000);
  const disconnected = moving.map((c) => next(c, Event.DISCONNECT, 5000));
  const reconnected = moving.map((c) => next(c, Event.RECONNECT, 20000));
  assert.equal(await cluster.kill(victim), 'SIGKILL');
  await Promise.all(disconnected);
  senders.forEach((s) => s.stop());
  await senders[1].loop; // the stayer's last send is answered by its live node
  const acked = senders.flatMap((s) => s.acked);

  // the clients of the dead node reconnect through the balancer, to the other nodes
  await Promise.all(reconnected);
  for (const c of moving) {
    const now = cluster.nodeOf(c);
    assert.ok(now !== undefined && now !== victim, `${c.id} reconnected to node ${now}, not the dead ${victim}`);
  }
  // every acknowledged message is there for every client: received live or in its history
  for (const [i, c] of clients.entries()) {
    const history = await historyIds(convs[i]);
    const missing = acked.filter((id) => !history.has(id) && !live[i].has(id));
    assert.deepEqual(missing, [], `${c.id} lacks acknowledged messages (of ${acked.length})`);
  }
  // and they chat again, both ways across the move
  const stayer = clients.indexOf(staying[0]);
  await chat(clients, convs, 0, stayer, 'after the kill');
  await chat(clients, convs, stayer, 0, 'after the kill');

  // the dead node's sessions leave the cluster's presence once its heartbeat is missed (~8 s)
  const t0 = Date.now();
  await eventually(async () => (await online(survivor, ['fo-stranded'])).length === 0, 15000);
  const gone = Date.now() - t0;
  assert.deepEqual((await online(survivor, ids)).sort(), ids.slice().sort(), 'the moved clients are online');
  // the dead node's sessions gone, events still find the moved clients' new sessions
  await chat(clients, convs, stayer, 0, 'after the dead sessions left');
  await chat(clients, convs, 0, stayer, 'after the dead sessions left');
  await stranded.close(); // it stops retrying the dead node
  console.log(`node ${victim} killed after ${acked.length} acknowledged messages; its stranded session left presence ${gone} ms after the checks began`);
  for (const c of clients) await c.close();
});

test('the killed node restarted with the same id rejoins: /healthz is ok and a client on it chats with one on another node', async () => {
  assert.ok(victim, 'the previous test killed a node');
  assert.notEqual(await cluster.healthz(victim), 200, 'the killed node is down');
  await cluster.restart(victim);
  assert.equal(await cluster.healthz(victim), 200);
  const other = NODE_IDS.find((n) => n !== victim);
  const back = await cluster.realtime(victim).createIMClient('rj-back');
  const there = await cluster.realtime(other).createIMClient('rj-there');
  // presence: each node sees the other's client
  await eventually(async () => (await online(other, ['rj-back'])).length === 1, 5000);
  await eventually(async () => (await online(victim, ['rj-there'])).length === 1, 5000);

  const invited = next(there, Event.INVITED);
  const conv = await back.createConversation({ members: ['rj-there'], name: 'after the restart' });
  const [, thereConv] = await invited;
  let got = next(there, Event.MESSAGE);
  const m1 = await conv.send(new TextMessage('from the restarted node'));
  assert.equal((await got)[0].id, m1.id);
  got = next(back, Event.MESSAGE);
  const m2 = await thereConv.send(new TextMessage('welcome back'));
  assert.equal((await got)[0].id, m2.id);
  // and the balancer sends clients to it again: one of three new connections lands there
  const through = [];
  for (let i = 0; i < 3; i++) through.push(await cluster.realtime('lb').createIMClient(`rj-lb-${i}`));
  assert.ok(through.some((c) => cluster.nodeOf(c) === victim), `a client through the balancer on node ${victim}`);
  for (const c of [back, there, ...through]) await c.close();
});
