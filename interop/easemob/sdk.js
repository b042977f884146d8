'use strict';
// The official Easemob web SDK (easemob-websdk 4.21.1) and Agora Chat web SDK (agora-chat 1.4.0),
// unmodified, under Node, pointed at a confab started by ../lib/harness.js (TLS: wss:// and
// https://, the certificate trusted through NODE_EXTRA_CA_CERTS as run-easemob.sh sets it).
//
// Both bundles are browser builds. They take their "web" code paths when `window.WebSocket` exists
// (without `window` they take a mini-program path that cannot work under Node), so the browser
// globals they use are provided before they are loaded (specs/easemob-msync.md §13):
//   self, window     the UMD wrapper reads `self`; platform detection reads `window.WebSocket`
//   WebSocket        npm `ws`, with an 'error' listener of its own: the SDK sets no `onerror` on
//                    the web path, and a bare `ws` throws an unhandled 'error' (ECONNREFUSED, a 404
//                    upgrade) that would end the test process; the close that follows is what the
//                    SDK reacts to
//   XMLHttpRequest   npm `xhr2` (all REST calls), taught to send a FormData (uploads), which xhr2
//                    refuses, by serialising it through `new Response(formData)`
//   localStorage     a Map that does not keep the SDK's device record ("localDeviceInfo"): with it
//                    kept, every connection of the process would share one resource (device). So a
//                    connection's resource is `webim_web_<ms>` (new at each open) unless the client
//                    names its device (`deviceId`), then `webim_web_<deviceId>` every time
//   navigator        {userAgent} (Node 20 has none; Node 21+ has its own)
//   document         agora-chat 1.4.0 listens for `visibilitychange` on it unguarded
//   File             Node 20 has it (FormData, Blob and Response too, which uploads use)
//   FileReader       the SDK reads downloads (a Blob: xhr2 is taught `responseType = 'blob'`) with
//                    it; a small one over Blob.arrayBuffer()
//
// A client (`connect`, `new Client`) is an EventEmitter that records and re-emits every SDK event
// under the handler's own name ('onConnected', 'onTextMessage', 'onError', …); tests wait for them
// with `nextEvent` (the next one), `seen` (one already raised, or the next) and `nextText`. The
// rest: users and tokens over the Easemob REST face (`register`, `userToken`, `rest`), and
// `requireMsync`, which fails a test at once when /websocket does not speak msync.
// EASEMOB_SDK_LOG=1 turns the SDK's own logging on.
const { EventEmitter } = require('node:events');
const https = require('node:https');
const { before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
// before the browser globals below exist (what the harness loads must not see them)
const { startConfab } = require('../lib/harness');

installGlobals();

function installGlobals() {
  const g = globalThis;
  if (!g.self) g.self = g;
  if (!g.window) g.window = g;
  if (!g.navigator) g.navigator = { userAgent: `node/${process.version}`, onLine: true, language: 'en' };
  if (!g.document) {
    g.document = { hidden: false, visibilityState: 'visible', cookie: '', addEventListener() {}, removeEventListener() {} };
  }
  // the window's events: the SDK listens for 'online'/'offline' (none come under Node) and for
  // 'beforeunload', on which its usage reporter stops a one-minute interval that would otherwise
  // hold the process; `unload()` raises it as a page's end would
  const listeners = new Map();
  g.addEventListener = (type, fn) => {
    if (!listeners.has(type)) listeners.set(type, new Set());
    listeners.get(type).add(fn);
  };
  g.removeEventListener = (type, fn) => listeners.get(type)?.delete(fn);
  g.dispatchEvent = (event) => {
    for (const fn of [...(listeners.get(event.type) || [])]) fn.call(g, event);
    return true;
  };
  const DEVICE_RECORD = 'localDeviceInfo';
  const store = new Map();
  g.localStorage = {
    getItem: (k) => (store.has(String(k)) ? store.get(String(k)) : null),
    setItem: (k, v) => {
      if (String(k) !== DEVICE_RECORD) store.set(String(k), String(v));
    },
    removeItem: (k) => void store.delete(String(k)),
    clear: () => store.clear(),
    key: (i) => [...store.keys()][i] ?? null,
    get length() {
      return store.size;
    },
  };

  const WS = require('ws');
  class WebSocket extends WS {
    constructor(url, protocols) {
      super(url, protocols);
      this.on('error', () => {});
    }
  }
  g.WebSocket = WebSocket;

  // uploads: a File (global from Node 20; node:buffer has it before) sent as FormData
  if (!g.File) g.File = require('node:buffer').File;
  const XHR2 = require('xhr2');
  class XMLHttpRequest extends XHR2 {
    open(method, url, ...rest) {
      // the SDK talks to confab only: a usage report or HTTP DNS lookup for Easemob's or Agora's own
      // hosts fails here as a network error, and is counted (`strayRequests`)
      const host = new URL(url, 'https://127.0.0.1').hostname;
      if (host !== '127.0.0.1' && host !== 'localhost') {
        strayRequests.push(`${method} ${url}`);
        url = 'https://0.0.0.0:9/refused';
      }
      return super.open(method, url, ...rest);
    }

    send(body) {
      if (typeof FormData !== 'undefined' && body instanceof FormData) {
        const encoded = new Response(body);
        this.setRequestHeader('Content-Type', encoded.headers.get('content-type'));
        encoded.arrayBuffer().then(
          (bytes) => XHR2.prototype.send.call(this, Buffer.from(bytes)),
          (e) => this.dispatchEvent?.({ type: 'error', error: e }),
        );
        return;
      }
      return super.send(body);
    }

    // downloads (downloadAndParseCombineMessage, …) ask for a Blob (`responseType = 'blob'`),
    // which xhr2 does not know: the body is read as bytes and handed over as a Blob
    _parseResponse() {
      if (this.responseType !== 'blob') return super._parseResponse();
      this.responseType = 'buffer';
      super._parseResponse();
      this.responseType = 'blob';
      this.response = new Blob([this.response]);
    }
  }
  g.XMLHttpRequest = XMLHttpRequest;

  // and read that Blob with a FileReader, which Node lacks: the part of it the SDK uses
  // (readAsArrayBuffer, readAsText; load/error/loadend as listeners or `on…` handlers)
  if (!g.FileReader) {
    class FileReader extends EventTarget {
      constructor() {
        super();
        this.readyState = 0;
        this.result = null;
        this.error = null;
        for (const type of ['load', 'error', 'loadend']) {
          this[`on${type}`] = null;
          this.addEventListener(type, (event) => this[`on${type}`] && this[`on${type}`](event));
        }
      }

      read(blob, as) {
        this.readyState = 1;
        Promise.resolve(blob.arrayBuffer()).then(
          (bytes) => {
            this.result = as(bytes);
            this.readyState = 2;
            this.dispatchEvent(new Event('load'));
            this.dispatchEvent(new Event('loadend'));
          },
          (e) => {
            this.error = e;
            this.readyState = 2;
            this.dispatchEvent(new Event('error'));
            this.dispatchEvent(new Event('loadend'));
          },
        );
      }

      readAsArrayBuffer(blob) {
        this.read(blob, (bytes) => bytes);
      }

      readAsText(blob) {
        this.read(blob, (bytes) => Buffer.from(bytes).toString('utf8'));
      }
    }
    g.FileReader = FileReader;
  }
}

/** Requests the SDK made to other hosts than confab's (refused); see XMLHttpRequest above. */
const strayRequests = [];

const SDKS = {
  easemob: () => require('easemob-websdk'),
  agora: () => require('agora-chat').default,
};
const loaded = {};

/** The SDK module (`{connection, message, utils, logger, statusCode}`): 'easemob' or 'agora'. */
function sdk(name = 'easemob') {
  if (!loaded[name]) {
    if (!SDKS[name]) throw new Error(`no SDK '${name}' (easemob or agora)`);
    const m = SDKS[name]();
    if (!process.env.EASEMOB_SDK_LOG) m.logger.disableAll();
    loaded[name] = m;
  }
  return loaded[name];
}

/** Every event handler the SDK calls; a client re-emits each under its name. */
const EVENTS = [
  'onOpened', 'onConnected', 'onDisconnected', 'onReconnecting', 'onError', 'onOnline', 'onOffline',
  'onMessage', 'onTextMessage', 'onImageMessage', 'onAudioMessage', 'onVideoMessage', 'onFileMessage',
  'onLocationMessage', 'onCmdMessage', 'onCustomMessage', 'onCombineMessage', 'onReceivedMessage',
  'onDeliveredMessage', 'onReadMessage', 'onRecallMessage', 'onChannelMessage', 'onModifiedMessage',
  'onStatisticMessage', 'onOfflineMessageSyncStart', 'onOfflineMessageSyncFinish',
  'onTokenWillExpire', 'onTokenExpired', 'onGroupEvent', 'onChatroomEvent', 'onContactInvited',
  'onContactAgreed', 'onContactRefuse', 'onContactDeleted', 'onContactAdded', 'onMultiDeviceEvent',
];

/** Every client made here, so that a test file can close what is left (`closeAll`). */
const clients = new Set();

class Client extends EventEmitter {
  /**
   * A connection of SDK `sdkName` ('easemob' | 'agora') to the confab `srv`, not yet open.
   * `options` go to the SDK's `connection` (e.g. `deviceId`, `delivery`, `autoReconnectNumMax`).
   */
  constructor(srv, { sdk: sdkName = 'easemob', ...options } = {}) {
    super();
    this.setMaxListeners(0);
    const em = srv.app.easemob;
    this.srv = srv;
    this.SDK = sdk(sdkName);
    this.appKey = `${em.org_name}#${em.app_name}`;
    /** Every event the SDK raised, in order: [name, argument]. */
    this.events = [];
    /** The text messages received (the SDK's onTextMessage argument). */
    this.texts = [];
    this.conn = new this.SDK.connection({
      appKey: this.appKey,
      isHttpDNS: false,
      url: `wss://127.0.0.1:${srv.port}/websocket`,
      apiUrl: `https://127.0.0.1:${srv.port}`,
      // a test is over long before the SDK's default five attempts (1-2 s apart) are
      autoReconnectNumMax: 2,
      ...options,
    });
    const handlers = {};
    for (const name of EVENTS) {
      handlers[name] = (arg) => {
        this.events.push([name, arg]);
        if (name === 'onTextMessage') this.texts.push(arg);
        this.emit(name, arg);
      };
    }
    this.conn.addEventHandler('confab-interop', handlers);
    clients.add(this);
  }

  /**
   * Log in: `{user, pwd}` (the SDK asks `POST /{org}/{app}/token` for a token) or
   * `{user, accessToken}`. Resolves what `open()` resolves; rejects with the SDK's error
   * (`{type, message, …}`), or after `ms` if the SDK settles neither way.
   */
  async open(params, ms = 20000) {
    this.user = params.user;
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`open() of ${params.user} settled neither way within ${ms} ms`)), ms);
    });
    try {
      return await Promise.race([this.conn.open(params), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The SDK's own view: whether the connection is open. */
  isOpened() {
    return this.conn.isOpened();
  }

  /** The message the SDK makes for `message.create(fields)`. */
  create(fields) {
    return this.SDK.message.create(fields);
  }

  /**
   * Send a text through the SDK; resolves the SDK's answer `{localMsgId, serverMsgId}`.
   * `chatType`: 'singleChat' (default), 'groupChat' or 'chatRoom'.
   */
  sendText(to, msg, { chatType = 'singleChat', ext, ms = 20000 } = {}) {
    const message = this.create({ type: 'txt', chatType, to, msg, ...(ext ? { ext } : {}) });
    return within(this.conn.send(message), ms, `send to ${to}`);
  }

  /** The next text message whose text is `msg` (or any, without `msg`), within `ms`. */
  nextText(msg, ms = 10000) {
    const seen = this.texts.find((t) => msg === undefined || t.msg === msg);
    if (seen) return Promise.resolve(seen);
    return this.nextEvent('onTextMessage', (t) => msg === undefined || t.msg === msg, ms);
  }

  /**
   * The first `event` raised so far, or the next one, whose argument passes `pred`; a rejection
   * after `ms` (for events that may come before the test starts waiting, e.g. an ack racing the
   * answer to the send that caused it).
   */
  seen(event, pred = () => true, ms = 10000) {
    const past = this.events.find(([e, arg]) => e === event && pred(arg));
    if (past) return Promise.resolve(past[1]);
    return this.nextEvent(event, pred, ms);
  }

  /** The next `event` whose argument passes `pred`, or a rejection after `ms`. */
  nextEvent(event, pred = () => true, ms = 10000) {
    return new Promise((resolve, reject) => {
      const on = (arg) => {
        if (!pred(arg)) return;
        clearTimeout(timer);
        this.off(event, on);
        resolve(arg);
      };
      const timer = setTimeout(() => {
        this.off(event, on);
        reject(new Error(`${this.user || 'a client'}: no ${event} within ${ms} ms (events: ${this.events.map(([e, arg]) => (e === 'onError' ? `onError ${arg && arg.type}` : e)).join(', ') || 'none'})`));
      }, ms);
      this.on(event, on);
    });
  }

  /** Log out (the SDK sends LOGOUT and closes the socket). */
  close() {
    clients.delete(this);
    try {
      this.conn.close();
    } catch (_) {
      // an SDK that never connected may throw here; nothing is left to close
    }
  }
}

function within(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * A client of `srv`, logged in with `{user, pwd}` or `{user, accessToken}`; `options` as for
 * `new Client` (`sdk: 'agora'` for agora-chat).
 */
async function connect(srv, login, options = {}) {
  const client = new Client(srv, options);
  try {
    await client.open(login);
  } catch (e) {
    client.close();
    throw e;
  }
  return client;
}

/** Close every client still open (an `after`/`afterEach` hook). */
function closeAll() {
  for (const c of [...clients]) c.close();
}

/**
 * Whether confab speaks msync at `/websocket`: a bare PROVISION frame (`MSync{command: PROVISION,
 * payload: empty}`, bytes `40 03 4a 00`, no user or token) is answered with a PROVISION frame (a
 * refusal, necessarily). Resolves false when it is not, within `ms`. Asked once per server.
 */
function speaksMsync(srv, ms = 4000) {
  if (srv.speaksMsync) return srv.speaksMsync;
  const WS = require('ws');
  srv.speaksMsync = new Promise((resolve) => {
    const ws = new WS(`wss://127.0.0.1:${srv.port}/websocket`);
    const done = (v) => {
      clearTimeout(timer);
      ws.terminate();
      resolve(v);
    };
    const timer = setTimeout(() => done(false), ms);
    ws.on('error', () => done(false));
    ws.on('close', () => done(false));
    ws.on('open', () => ws.send(Buffer.from([0x40, 0x03, 0x4a, 0x00])));
    ws.on('message', (data, isBinary) => done(isBinary && msyncCommand(Buffer.from(data)) === 3));
  });
  return srv.speaksMsync;
}

/** `MSync.command` (field 8, varint) of an encoded frame, or undefined. */
function msyncCommand(buf) {
  let i = 0;
  const varint = () => {
    let v = 0;
    let shift = 0;
    for (;;) {
      if (i >= buf.length) throw new Error('truncated');
      const b = buf[i++];
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
      shift += 7;
    }
  };
  try {
    while (i < buf.length) {
      const key = varint();
      const [field, wire] = [Math.floor(key / 8), key % 8];
      if (wire === 0) {
        const v = varint();
        if (field === 8) return v;
      } else if (wire === 2) i += varint();
      else if (wire === 1) i += 8;
      else if (wire === 5) i += 4;
      else return undefined;
    }
  } catch (_) {
    // not protobuf
  }
  return undefined;
}

/**
 * For a test that needs the msync gateway: throws at once, with the reason, when confab does not
 * speak msync at `/websocket` (rather than letting each SDK call time out).
 */
async function requireMsync(srv) {
  if (!(await speaksMsync(srv))) throw new Error('confab does not answer a PROVISION frame at /websocket: no msync gateway');
}

/**
 * The end of a test file: every client left is closed, and the window's 'beforeunload' raised, on
 * which the SDK stops its usage reporter's interval (it would hold the process open otherwise).
 */
function unload() {
  closeAll();
  globalThis.dispatchEvent({ type: 'beforeunload' });
}

/** One HTTPS request with a JSON body to `srv`; resolves `{status, body}`. */
function request(srv, method, path, headers, body) {
  const data = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port: srv.port, method, path, headers: { 'Content-Type': 'application/json', ...headers } },
      (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => {
          let parsed = text;
          try {
            parsed = text ? JSON.parse(text) : null;
          } catch (_) {
            // not JSON: the text itself
          }
          resolve({ status: res.statusCode, body: parsed });
        });
      },
    );
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

/**
 * An Easemob REST call `/{org}/{app}{path}` on `srv` with the app token (fetched once with the
 * app's client id and secret), or `{token}`; resolves `{status, body}`.
 */
async function rest(srv, method, path, body, { token } = {}) {
  const em = srv.app.easemob;
  const base = `/${em.org_name}/${em.app_name}`;
  let bearer = token;
  if (bearer === undefined) {
    if (!srv.easemobAppToken) {
      const grant = { grant_type: 'client_credentials', client_id: em.client_id, client_secret: em.client_secret };
      const r = await request(srv, 'POST', `${base}/token`, {}, grant);
      if (r.status !== 200) throw new Error(`the Easemob app token: ${r.status} ${JSON.stringify(r.body)}`);
      srv.easemobAppToken = r.body.access_token;
    }
    bearer = srv.easemobAppToken;
  }
  return request(srv, method, `${base}${path}`, bearer ? { Authorization: `Bearer ${bearer}` } : {}, body);
}

/** `rest` that must answer 200; its body. */
async function rest200(srv, method, path, body, opts) {
  const r = await rest(srv, method, path, body, opts);
  if (r.status !== 200) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

const PASSWORD = 'pw-123456';

/** Register users (Easemob REST, app token), all with the password `PASSWORD`. */
async function register(srv, ...names) {
  await rest200(srv, 'POST', '/users', names.map((username) => ({ username, password: PASSWORD })));
}

/** A user token for `user` (`POST /token`, grant_type password, as the SDK itself asks). */
async function userToken(srv, user, password = PASSWORD) {
  const em = srv.app.easemob;
  const r = await request(srv, 'POST', `/${em.org_name}/${em.app_name}/token`, {}, { grant_type: 'password', username: user, password });
  if (r.status !== 200) throw new Error(`a user token for ${user}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.access_token;
}

let seq = 0;
/** A username unique to this process (Easemob usernames: lowercase letters, digits, _ . -). */
function uname(name) {
  return `${name}_${process.pid}_${++seq}`.toLowerCase();
}

/**
 * What every Easemob suite file sets up: one confab for the file's tests (handed to `started`),
 * the SDK clients closed after each test (then `afterEachTest`, if given), and at the end no
 * request made to other hosts than confab and a clean exit on SIGTERM.
 */
function suite(started, { afterEachTest } = {}) {
  let srv;
  before(async () => {
    srv = await startConfab();
    started(srv);
  });
  afterEach(async () => {
    closeAll();
    if (afterEachTest) await afterEachTest();
  });
  after(async () => {
    unload();
    assert.deepEqual(strayRequests, [], 'the SDK asks nothing of other hosts than confab');
    assert.equal(await srv.stop(), 0, 'confab exits cleanly on SIGTERM');
  });
}

/** Users registered with the common password, each logged in with `sdk` (default easemob-websdk). */
async function users(srv, names, { sdk: which } = {}) {
  const ids = names.map((n) => uname(n));
  await register(srv, ...ids);
  const clients = [];
  for (const id of ids) clients.push(await connect(srv, { user: id, pwd: PASSWORD }, which ? { sdk: which } : {}));
  return { ids, clients };
}

module.exports = { sdk, Client, connect, closeAll, unload, strayRequests, speaksMsync, requireMsync, rest, rest200, register, userToken, uname, PASSWORD, within, suite, users };
