//! Building msync frames: JIDs, statuses, and the envelope (`MSync{command, payload}`) of each
//! answer. A server frame needs only `command` and `payload` (spec §2).

use bytes::Bytes;
use prost::Message as _;

use super::proto::m_sync::Command;
use super::proto::status::ErrorCode;
use super::proto::*;

/// Users' JIDs are in this domain…
pub const USER_DOMAIN: &str = "easemob.com";
/// …groups', chat rooms' and threads' in this one.
pub const GROUP_DOMAIN: &str = "conference.easemob.com";

/// A user's JID, with the device when known.
pub fn user_jid(app_key: &str, name: &str, resource: Option<&str>) -> Jid {
    Jid {
        app_key: Some(app_key.to_string()),
        name: Some(name.to_string()),
        domain: Some(USER_DOMAIN.to_string()),
        client_resource: resource.map(str::to_string),
    }
}

/// A group's or chat room's JID: its conversation id.
pub fn group_jid(app_key: &str, id: i64) -> Jid {
    Jid { app_key: Some(app_key.to_string()), name: Some(id.to_string()), domain: Some(GROUP_DOMAIN.to_string()), client_resource: None }
}

/// Whether a JID names a group, chat room or thread (the SDK's own test: the domain).
pub fn is_group(j: &Jid) -> bool {
    j.domain.as_deref().is_some_and(|d| d.contains("conference"))
}

pub fn status(code: ErrorCode, reason: Option<&str>) -> Status {
    Status { error_code: Some(code as i32), reason: reason.map(str::to_string), redirect_info: vec![] }
}

pub fn ok() -> Status {
    status(ErrorCode::Ok, None)
}

/// A frame: the command and its payload.
pub fn frame(cmd: Command, payload: &impl prost::Message) -> Bytes {
    let m = MSync { command: Some(cmd as i32), payload: Some(payload.encode_to_vec()), ..Default::default() };
    Bytes::from(m.encode_to_vec())
}

/// The login answer: always a status, and the device echoed (the SDK adopts it as its resource).
/// `protocolCompressType` is never set: echoing the client's LZ4 offer would turn compression on.
pub fn provision(status: Status, resource: Option<String>) -> Bytes {
    frame(Command::Provision, &Provision { status: Some(status), resource, ..Default::default() })
}

/// An UNREAD answer: the queues with something for this device.
pub fn unread(status: Status, unread: Vec<MetaQueue>, now: i64) -> Bytes {
    frame(Command::Unread, &CommUnreadDl { status: Some(status), unread, timestamp: Some(now.max(0) as u64) })
}

/// "Queue X has something": the client pulls it.
pub fn notice(queue: Jid) -> Bytes {
    frame(Command::Notice, &CommNotice { queue: Some(queue) })
}

/// A SYNC answer (a send's result, a page, or unsolicited metas).
pub fn sync(dl: CommSyncDl) -> Bytes {
    frame(Command::Sync, &dl)
}

/// A page of a queue: `dl` with `metas` already encoded (a pull answered from memory copies the
/// bytes the encoder made once). Repeated fields may follow the others (protobuf concatenates).
pub fn page(dl: CommSyncDl, metas: &[Bytes]) -> Bytes {
    use prost::encoding::{encode_key, encode_varint, WireType};
    let mut payload = dl.encode_to_vec();
    payload.reserve(metas.iter().map(|m| m.len() + 8).sum());
    for m in metas {
        encode_key(4, WireType::LengthDelimited, &mut payload);
        encode_varint(m.len() as u64, &mut payload);
        payload.extend_from_slice(m);
    }
    let m = MSync { command: Some(Command::Sync as i32), payload: Some(payload), ..Default::default() };
    Bytes::from(m.encode_to_vec())
}

/// A SYNC answer that is only a status (a refused or unparseable command).
pub fn sync_status(status: Status, now: i64) -> Bytes {
    sync(CommSyncDl { status: Some(status), timestamp: Some(now.max(0) as u64), ..Default::default() })
}

/// Metas the client did not pull: a one-off page of `queue`, complete in itself.
pub fn unsolicited(queue: Jid, metas: Vec<Meta>, now: i64) -> Bytes {
    sync(CommSyncDl {
        status: Some(ok()),
        queue: Some(queue),
        metas,
        is_last: Some(true),
        timestamp: Some(now.max(0) as u64),
        ..Default::default()
    })
}

/// News of `user`'s contacts as a `ROSTER` meta (spec §10.3), unsolicited in `user`'s queue:
/// `RosterBody{operation, from: peer, to: [user], reason}`.
pub fn roster(app_key: &str, user: &str, peer: &str, news: confab_engine::ContactNews, reason: Option<String>, id: i64, now: i64) -> Bytes {
    use confab_engine::ContactNews as N;
    use roster_body::Operation as Op;
    let op = match news {
        N::Invited => Op::Add,
        N::Agreed => Op::RemoteAccept,
        N::Declined => Op::RemoteDecline,
        N::Added => Op::Accept,
        N::Removed => Op::Remove,
    };
    let body = RosterBody {
        operation: Some(op as i32),
        from: Some(user_jid(app_key, peer, None)),
        to: vec![user_jid(app_key, user, None)],
        reason,
        ..Default::default()
    };
    let meta = Meta {
        id: Some(id as u64),
        from: Some(user_jid(app_key, peer, None)),
        to: Some(user_jid(app_key, user, None)),
        timestamp: Some(now.max(0) as u64),
        ns: Some(meta::NameSpace::Roster as i32),
        payload: Some(body.encode_to_vec()),
        ..Default::default()
    };
    unsolicited(user_jid(app_key, user, None), vec![meta], now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(" ")
    }

    /// The spec's Appendix B frames, byte for byte.
    #[test]
    fn frames_match_the_specs_wire_examples() {
        assert_eq!(hex(&provision(ok(), Some("webim_web_1".into()))), "40 03 4a 11 42 02 08 00 6a 0b 77 65 62 69 6d 5f 77 65 62 5f 31");
        assert_eq!(hex(&unread(ok(), vec![], 1_700_000_000_000)), "40 01 4a 0b 0a 02 08 00 18 80 d0 95 ff bc 31");
        assert_eq!(
            hex(&notice(user_jid("org#app", "alice", None))),
            "40 02 4a 1f 0a 1d 0a 07 6f 72 67 23 61 70 70 12 05 61 6c 69 63 65 1a 0b 65 61 73 65 6d 6f 62 2e 63 6f 6d"
        );
        let ack = CommSyncDl {
            status: Some(ok()),
            meta_id: Some(531458918908),
            server_id: Some(1400000000000000001),
            timestamp: Some(1700000000000),
            ..Default::default()
        };
        assert_eq!(hex(&sync(ack)), "40 00 4a 1c 0a 02 08 00 10 fc 93 ae eb bb 0f 18 81 80 b0 ec d1 92 f3 b6 13 40 80 d0 95 ff bc 31");
    }

    #[test]
    fn a_page_of_encoded_metas_reads_as_the_page_itself() {
        let metas: Vec<Meta> =
            (1..=3).map(|i| Meta { id: Some(i), ns: Some(meta::NameSpace::Chat as i32), ..Default::default() }).collect();
        let dl = CommSyncDl { status: Some(ok()), queue: Some(group_jid("o#a", 7)), is_last: Some(true), ..Default::default() };
        let raw: Vec<Bytes> = metas.iter().map(|m| Bytes::from(m.encode_to_vec())).collect();
        let frame = MSync::decode(page(dl.clone(), &raw)).unwrap();
        let got = CommSyncDl::decode(frame.payload.unwrap().as_slice()).unwrap();
        assert_eq!(got, CommSyncDl { metas, ..dl });
    }
}
