//! A stand-in for LeanCloud IM, for testing and benchmarking `confab import leancloud`.
//!
//! LeanCloud shuts down on 2027-01-12 and its servers cannot run here, so this crate plays its part:
//!
//! * [`Dataset`]: an app generated deterministically from a [`DatasetSpec`] (seed and counts):
//!   group, unique one-to-one, chat-room, service and (optionally) temporary conversations;
//!   `_ConversationMemberInfo` roles; `_User` rows with LeanCloud's password hashing;
//!   `_SysMessage` rows; and message logs of any length, computed on demand so that a million
//!   messages page in constant memory. Tests mutate it while it is served ([`Dataset::append`],
//!   [`Dataset::append_message`], [`Dataset::add_conversation`]) and read the expected values back
//!   ([`Dataset::messages`], [`Dataset::message_at`], [`Dataset::subscriber_messages`],
//!   [`Dataset::app_messages`], [`Dataset::rows`], [`Dataset::conversations`]). A message costs about
//!   5 µs to compute and serialise in a release build (25 µs in a debug build), about 350 bytes of
//!   JSON: a million-message walk is some 5 s of the stand-in's CPU (release).
//! * [`StandInServer`]: LeanCloud's REST answers over a dataset, on `127.0.0.1:<free port>`, with
//!   fault injection ([`Faults`], [`FailMode`]) and request counts by route ([`RequestStats`]).
//! * [`write_export_dir`] / [`write_export_tar_gz`]: the dataset as LeanCloud's data export (JSON
//!   Lines per class), with optional faults ([`ExportOptions`]).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use confab_leancloud_standin::*;
//! let ds = Dataset::generate(DatasetSpec { big_groups: vec![1_000_000], ..Default::default() });
//! let server = StandInServer::start_with(ds.clone(), Faults { throttle_every: Some(7), ..Default::default() }).await?;
//! // point the importer at server.url() with app id ds.app_id() and master key ds.master_key() …
//! let group = ds.conversation_ids(ConvKind::Group)[0].clone();
//! let new = ds.append(&group, 25).unwrap(); // what a cut-over pull must bring, and only that
//! let expected: Vec<serde_json::Value> = ds.messages(&group).map(|m| m.record()).collect();
//! assert!(server.stats().throttled(routes::CONVERSATION_MESSAGES) > 0);
//! let manifest = write_export_tar_gz(&ds, std::path::Path::new("/tmp/export.tar.gz"), &ExportOptions::default())?;
//! # let _ = (new, expected, manifest); Ok(()) }
//! ```
//!
//! # What follows LeanCloud's documentation, and what was chosen
//!
//! Sources: `shared/specs/leancloud-export.md` (the authority here), `leancloud-rest-conventions.md`
//! and the REST v1.2 seed. **Documented** points are implemented as documented; **chosen** points are
//! UNCONFIRMED in those sources, and this is what the stand-in does (an importer must not rely on
//! more than the documented part; fields marked optional may be absent).
//!
//! ## Ids, times, encodings (documented)
//! * Conversation objectIds are 24 lowercase hex (Mongo ObjectIds: the first 8 hex are the creation
//!   time in seconds, so objectId order is creation order, as on LeanCloud).
//! * `msg-id` is 22 characters of base64 over 16 bytes, alphabet `A–Z a–z 0–9 + _` (every
//!   documented id mixes `+` and `_`); every tenth generated id contains a `+`, so an unencoded
//!   `+` in a query string (decoded as a space, as form decoding does) makes paging fail.
//! * `timestamp` is ms. Within a conversation timestamps increase, except that every
//!   `same_ms_every`-th message shares the millisecond of the one before. **Chosen**: messages in one
//!   millisecond are ordered by msg-id compared bytewise (ASCII: `+` < digits < upper < `_` < lower),
//!   and paging cursors compare (timestamp, msg-id) pairs.
//! * `conv-id` in records is the objectId + `00000000` (the docs' real record); `to` is the objectId.
//! * `uniqueId` is md5 hex of the sorted member ids concatenated (inferred from the docs' example;
//!   matches `confab-engine` `conv::unique_id`).
//! * Rows use the REST object encoding: `createdAt`/`updatedAt` plain ISO strings with ms, `lm` a
//!   `{"__type":"Date","iso":…}`, `_SysMessage.conv` a Pointer. `tr`, `sys`, `unique`, `mu`, `attr`,
//!   `lm` are absent when unset; chat rooms and service conversations have no `m`.
//! * `_User.password` = base64(SHA-512 of salt‖password, then 512 × SHA-512); user 0 has the docs'
//!   salt and the password `password`, so its hash is the docs' vector.
//!
//! ## Message records
//! Always: `timestamp`, `conv-id`, `data`, `from`, `msg-id`, `is-conv` (true), `is-room` (false),
//! `to`, `bin`, `from-ip` (a string, or null for about one in ten). `ack-at` is absent for chat-room
//! messages, recalled messages and about one in five others ("absent if never delivered").
//! Contents: plain text (including multi-line, quotes, emoji, RTL), rich-media JSON strings
//! (`_lctype` −1 with and without `_lcattrs`, −2 image / −3 audio / −4 video with `_lcfile`
//! {url, objId, metaData}, −6 file with `_lcfile.name`/`size`, −5 location with `_lcloc`, positive app
//! types 1–3 with extra top-level keys), and binary (`bin: true`, standard base64 `data`).
//! **Chosen** (every field optional, switchable off by [`RecordFields`]):
//! * a recalled message has `data` = `{"_lctype":-127}` (the SDK's `RecalledMessage`, what confab's
//!   realtime face serves for recalled messages), `recall: true`, and `patch-timestamp` (ms);
//! * an edited message has its new content as `data` and `patch-timestamp`;
//! * a message that mentions has `mention-pids` (array) and `mention-all` (bool), the realtime
//!   `logs` names in the REST kebab-case style.
//!
//! ## History endpoints
//! `GET /1.2/rtm/conversations/{id}/messages`, `/1.2/rtm/chatrooms/{id}/messages`,
//! `/1.2/rtm/service-conversations/{id}/subscribers/{client_id}/messages`, `/1.2/rtm/messages`
//! (app-wide) and `/1.2/rtm/clients/{client_id}/messages` (one sender, ordinary conversations and
//! chat rooms). Documented: newest first; `timestamp` (default now) + `msgid` start, `till_timestamp`
//! (default 0) + `till_msgid` stop, both excluded unless `include_start` / `include_stop`;
//! `reversed` walks oldest first with the defaults swapped (`timestamp` 0, `till_timestamp` now);
//! `limit` default 100, max 1000; the seed's six-row truth table holds (unit-tested).
//! **Chosen**: a bound without its msg-id stands for its whole millisecond (excluded or included
//! whole); `limit` above 1000 is 1000 and below 1 is 100; `msgid` without `timestamp` (or
//! `till_msgid` without `till_timestamp`) is 400 `{"code":1,…}`; a malformed number or boolean
//! (`true`/`false`/`1`/`0`) is 400 `{"code":1,…}`; `max_ts` is read as `timestamp` (1.1's name).
//! The app-wide endpoint takes the same parameters (the seed says "same as").
//!
//! **Chosen, wrong kind or unknown id**: history is looked up by id, so an id that is no
//! conversation answers `[]`; a known conversation under the wrong resource answers 400 with the
//! IM code for the resource: `/conversations/` with a chat room or service conversation →
//! `{"code":4314,"error":"NORMAL_CONVERSATION_REQUIRED"}`, `/chatrooms/` with anything else → 4316
//! `TRANSIENT_CONVERSATION_REQUIRED`, `/service-conversations/` with anything else → 4313
//! `SYSTEM_CONVERSATION_REQUIRED`. Temporary conversations (`_tmp:` ids) answer under
//! `/conversations/`.
//!
//! **Service conversations (chosen)**: each message goes either to all subscribers (three in four)
//! or to one or two of them (`to_clients`). A subscriber's history holds the messages to all and
//! those to them, with `conv-id` = md5(convId + ":" + clientId) (the v1 doc's per-user log id) and
//! `to` = the service conversation's objectId; a non-subscriber's history is `[]`. All subscribers
//! subscribed before the first message. `/conversations/{service id}/messages` is 400 4314.
//! The app-wide history contains every conversation's log and every per-subscriber log: **a message
//! to all subscribers appears once per subscriber**, at the same (timestamp, msg-id), ordered by
//! `conv-id`; a page boundary inside such a group skips the group's remaining copies (the cursor
//! cannot tell them apart), so use the per-subscriber endpoint for service conversations. Temporary
//! conversations (when the spec has any) appear only in the app-wide history (`conv-id` = `to` =
//! the `_tmp:` id); they have no `_Conversation` row.
//!
//! ## Other endpoints
//! * `GET /1.2/rtm/all-conversations?skip&limit&where` → `{"results":[…]}`, every kind, objectId order
//!   (**chosen**: the seed gives no default; storage rules: `limit` default 100, out of 1–1000 → 100;
//!   `limit=0` answers no results; `count=1` adds `count`). Also `/1.2/rtm/conversations` (neither
//!   `tr` nor `sys`), `/chatrooms`, `/service-conversations`.
//! * `GET /1.1/scan/classes/{class}?limit&cursor&where` for `_Conversation`, `_ConversationMemberInfo`,
//!   `_SysMessage`, `_User` → `{"results":[…],"cursor":…}` in objectId order, `limit` default 100
//!   (max 1000). **Chosen**: the cursor is the last objectId's 12 bytes in URL-safe base64 (16
//!   characters like the docs' `pQRhIrac3AEpLzCA`), null once a page comes back short — a class whose
//!   size is a multiple of `limit` ends with an empty page; no 10-minute expiry; a cursor that does
//!   not decode is 400 `{"code":1,"error":"Invalid cursor."}`; an unknown class is 404
//!   `{"code":101,"error":"Class or object doesn't exists."}`. `_User` rows over REST lack
//!   `password`, `salt` and `sessionToken` (LeanCloud never returns them); the export has them.
//! * `where` supports equality (array fields: contains), `$ne $lt $lte $gt $gte $in $nin $all $size
//!   $exists $or $and`, Date values; malformed JSON is 400 code 107; other operators 400 code 1.
//! * `GET /1.2/rtm/conversations/{id}/mutes` → `{"result":[…]}` (`mu`, `[]` when unset) and
//!   `…/members` → `{"result":[…]}`; `GET /1.2/rtm/service-conversations/{id}/subscribers?limit&client_id`
//!   → `[{"timestamp","subscriber","conv_id"}]` in client-id order after `client_id` (limit default
//!   and max 50); `…/subscribers/count` → `{"count":n}`. **Chosen**: an unknown conversation is 404
//!   `{"code":4303,"error":"CONVERSATION_NOT_FOUND"}`, a wrong kind as above.
//! * Anything else: 404 `{"code":404,"error":"Not Found"}`.
//!
//! ## Auth (documented)
//! `X-LC-Id: <app id>` and `X-LC-Key: <masterKey>,master`, or `X-LC-Sign: md5(ts+masterKey),ts,master`.
//! Anything else (no key, the app key, a wrong app id) → 401 `{"code":401,"error":"Unauthorized."}`
//! (**chosen**: the app key on these master-only endpoints is 401, too).
//!
//! ## Faults
//! [`Faults`]: every Nth request, or a seeded random fraction, answers 429 `{"code":429,"error":"Too
//! many requests."}` (optionally with `Retry-After`, and optionally only on some routes); a delay
//! before every answer; after N requests (or on [`StandInServer::fail`]) every request fails, with 500
//! `{"code":1,…}` or by refusing connections (the listening socket closes and open connections are
//! dropped unanswered) until [`StandInServer::heal`], which listens again on the same port. Faults
//! come before the auth check. [`StandInServer::stats`] counts requests, 429s, failures and 401s by
//! route template ([`routes`]).
//!
//! ## Appending while serving (chosen)
//! [`Dataset::append`] stamps new messages after the conversation's last message and after the last
//! request the server answered, and never in the future: the batch ends at now, 1 ms apart (the
//! call blocks its thread up to 50 ms to make room); a batch larger than the room there is shares
//! milliseconds (ordered by msg-id). So an importer that
//! pulled before the append and pulls again with `till_timestamp` = its first run's start gets
//! exactly the appended messages. Appended messages are never recalled or edited. `lm` follows the
//! last message; `updatedAt` does not change (**chosen**: LeanCloud's IM server writes `lm`
//! directly). [`Dataset::add_conversation`] creates a conversation now (its objectId carries the
//! current time), with its messages stamped the same way.
//!
//! ## The export (chosen layout)
//! One JSON Lines file per class, `<folder>/<class>.jsonl`, the folder being the app id unless
//! [`ExportOptions::folder`] says otherwise, in a directory or a `.tar.gz` (a directory entry, then
//! the files). Rows as [`Dataset::rows`] gives them (objectId order). Messages are not in the export
//! (history is REST only); `_SysMessage` rows are, with `timestamp` and `ackAt` as numbers (**chosen**;
//! the type is UNCONFIRMED). `_User` rows have `password` and `salt`, and `sessionToken` unless
//! [`ExportOptions::session_tokens`] is off (UNCONFIRMED that LeanCloud exports it). Faults: a
//! malformed line (a row cut short) at a given line of a class ([`MalformedLine`]), reported by the
//! [`ExportManifest`] as (file, line); a class split into `<class>.0.jsonl` and `<class>.1.jsonl`.
#![forbid(unsafe_code)]

mod dataset;
mod export;
mod history;
mod ids;
mod query;
mod server;

pub use dataset::{
    Audience, ConvKind, ConversationInfo, Dataset, DatasetSpec, Message, MessageIter, MessageKind, NewConversation, NewMessage,
    RecordFields, StandInError, Subscriber, User, BASE_EPOCH_MS, CLASSES, DOC_SALT,
};
pub use export::{write_export_dir, write_export_tar_gz, ExportFile, ExportManifest, ExportOptions, MalformedLine, MALFORMED};
pub use history::{Bound, HistoryQuery, DEFAULT_LIMIT, MAX_LIMIT};
pub use ids::{date, iso, now_ms, password_hash, subscriber_log_id, unique_id};
pub use server::{routes, FailMode, Faults, RequestStats, RouteCount, StandInServer};
