'use strict';
// A LeanCloud app moved with `confab import leancloud`, then used by its unchanged SDK: the app
// keeps its keys and sets only `server`; its clients open a conversation by the objectId they
// cached, read its history by LeanCloud's msg-ids, and talk in it. The source is the LeanCloud
// stand-in the Rust side of the suite serves (LC_STANDIN_* in the environment).
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { execFileSync } = require('node:child_process');
const { Realtime, TextMessage, Event, MessageQueryDirection } = require('leancloud-realtime');
const { startConfab, next, newStore, storeArgs } = require('../lib/harness');

const SOURCE = {
  url: process.env.LC_STANDIN_URL,
  appId: process.env.LC_STANDIN_APP_ID,
  appKey: process.env.LC_STANDIN_APP_KEY,
  masterKey: process.env.LC_STANDIN_MASTER_KEY,
};

/** GET from the stand-in with the master key. */
function source(urlPath) {
  return new Promise((resolve, reject) => {
    const req = http.get(
      `${SOURCE.url}${urlPath}`,
      { headers: { 'X-LC-Id': SOURCE.appId, 'X-LC-Key': `${SOURCE.masterKey},master` } },
      (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve(JSON.parse(text)));
      },
    );
    req.on('error', reject);
  });
}

let srv;
let summary;
before(async () => {
  assert.ok(SOURCE.url, 'this test needs the LeanCloud stand-in: run the suite with `cargo test` (tests/it/interop.rs serves it)');
  const dir = newStore('confab-import-');
  const bin = process.env.CONFAB_BIN;
  // the app, created with the LeanCloud app's own keys, then the import
  const app = JSON.parse(
    execFileSync(bin, ['app', 'create', '--name', 'moved', '--app-id', SOURCE.appId, '--app-key', SOURCE.appKey,
      '--master-key', SOURCE.masterKey, '--json', ...storeArgs(dir)], { encoding: 'utf8' }),
  );
  summary = JSON.parse(
    execFileSync(bin, ['import', 'leancloud', '--app', 'moved', ...storeArgs(dir), '--server', SOURCE.url,
      '--source-app-id', SOURCE.appId, '--source-master-key', SOURCE.masterKey, '--json'], { encoding: 'utf8' }),
  );
  srv = await startConfab({ dir, app });
});
after(async () => {
  if (srv) assert.equal(await srv.stop(), 0, 'confab exits cleanly on SIGTERM');
});

/** What the app had: its keys and `server` (4.3.1 takes the host without a scheme). */
function realtime() {
  return new Realtime({ appId: SOURCE.appId, appKey: SOURCE.appKey, server: `127.0.0.1:${srv.port}` });
}

test('the import brought every conversation', () => {
  assert.ok(summary.conversations > 5, JSON.stringify(summary));
  assert.equal(summary.conversations, summary.conversations_created);
  assert.ok(summary.messages > 100);
});

test('a client opens an imported conversation by its old id, reads its history by msg-id and talks in it', async () => {
  const all = await source('/1.2/rtm/all-conversations?limit=1000');
  const group = all.results.find((c) => Array.isArray(c.m) && c.m.length >= 2 && !c.unique && !c.tr && !c.sys);
  const [first, second] = group.m;
  const oldest = await source(`/1.2/rtm/conversations/${group.objectId}/messages?reversed=true&limit=5`);
  const newest = await source(`/1.2/rtm/conversations/${group.objectId}/messages?limit=5`);

  const a = await realtime().createIMClient(first);
  const b = await realtime().createIMClient(second);
  const conv = await a.getConversation(group.objectId);
  assert.ok(conv, 'found by the objectId the client cached');
  assert.equal(conv.id, group.objectId);
  assert.deepEqual([...conv.members].sort(), [...group.m].sort());
  assert.equal(conv.name, group.name);

  // history: the newest page, then older pages by (timestamp, msg-id), as the SDK pages
  const page = await conv.queryMessages({ limit: 5 });
  assert.deepEqual(page.map((m) => m.id), newest.map((m) => m['msg-id']).reverse());
  assert.deepEqual(page.map((m) => m.timestamp.getTime()), newest.map((m) => m.timestamp).reverse());
  const earliest = await conv.queryMessages({ limit: 5, direction: MessageQueryDirection.OLD_TO_NEW, startTime: 0 });
  assert.deepEqual(earliest.map((m) => m.id), oldest.map((m) => m['msg-id']));

  // a message in it reaches the other member, named by the same id
  const got = next(b, Event.MESSAGE);
  await conv.send(new TextMessage('after the move'));
  const [msg, theirs] = await got;
  assert.equal(msg.text, 'after the move');
  assert.equal(theirs.id, group.objectId);
  const after = await conv.queryMessages({ limit: 2 });
  assert.equal(after[1].text, 'after the move');
  assert.equal(after[0].id, newest[0]['msg-id'], 'the last imported message comes right before it');
  await a.close();
  await b.close();
});
