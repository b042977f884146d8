//! Engine values as protocol commands: the pushes the gateway sends, and the items of replies.

use confab_engine::model::{Content, ConvChange, ConvRef, Message};
use serde_json::{json, Value};

use super::proto::*;
use crate::extract::{cid_of, mid, mid_of};

/// IM commands carry `service = 2` (the Swift SDK requires it; the JS SDK accepts it).
pub const SERVICE_IM: i32 = 2;

pub fn command(cmd: CommandType, op: Option<OpType>) -> GenericCommand {
    GenericCommand { cmd: Some(cmd as i32), op: op.map(|o| o as i32), service: Some(SERVICE_IM), ..Default::default() }
}

/// `(msg, binaryMsg)` of a message: bytes as bytes, anything else as the text LeanCloud clients
/// see (`render::data`).
fn content(m: &Message) -> (Option<String>, Option<Vec<u8>>) {
    match &m.content {
        Content::Binary(b) if m.recalled_at.is_none() => (None, Some(b.clone())),
        _ => (Some(crate::render::data(m).0), None),
    }
}

/// A message pushed to its recipients.
pub fn direct(m: &Message, conv: &ConvRef, server_ts: i64) -> GenericCommand {
    let (msg, binary_msg) = content(m);
    GenericCommand {
        server_ts: Some(server_ts),
        direct_message: Some(DirectCommand {
            cid: Some(cid_of(conv)),
            id: Some(mid(m)),
            from_peer_id: Some(m.from.clone()),
            timestamp: Some(m.timestamp),
            msg,
            binary_msg,
            transient: m.transient.then_some(true),
            mention_pids: m.mentions.clone(),
            mention_all: m.mention_all.then_some(true),
            patch_timestamp: m.edited_at,
            ..Default::default()
        }),
        ..command(CommandType::Direct, None)
    }
}

pub fn patch_item(m: &Message, conv: &ConvRef) -> PatchItem {
    let (data, binary_msg) = content(m);
    PatchItem {
        cid: Some(cid_of(conv)),
        mid: Some(mid(m)),
        timestamp: Some(m.timestamp),
        recall: Some(m.recalled_at.is_some()),
        data,
        binary_msg,
        patch_timestamp: m.recalled_at.or(m.edited_at),
        from: Some(m.from.clone()),
        mention_all: Some(m.mention_all),
        mention_pids: m.mentions.clone(),
        ..Default::default()
    }
}

/// Edits and recalls pushed to a conversation's members.
pub fn patches(items: Vec<PatchItem>, last_patch_time: i64) -> GenericCommand {
    GenericCommand {
        patch_message: Some(PatchCommand { patches: items, last_patch_time: Some(last_patch_time) }),
        ..command(CommandType::Patch, Some(OpType::Modify))
    }
}

/// How one member hears of a conversation change: the op, and the `convMessage`. Those the
/// change is about hear `joined`/`left`/`shutuped`/…; the others `members_joined`/… with `m`.
pub fn conv_change(conv: &ConvRef, by: Option<&str>, change: &ConvChange, recipient: &str) -> (OpType, ConvCommand) {
    let is_subject = change.subjects().iter().any(|s| s == recipient);
    let mut c = ConvCommand { cid: Some(cid_of(conv)), init_by: by.map(str::to_string), ..Default::default() };
    let pair = |own: OpType, others: OpType| if is_subject { own } else { others };
    let op = match change {
        ConvChange::Joined { .. } => pair(OpType::Joined, OpType::MembersJoined),
        ConvChange::Left { .. } => pair(OpType::Left, OpType::MembersLeft),
        ConvChange::Muted { .. } => pair(OpType::Shutuped, OpType::MembersShutuped),
        ConvChange::Unmuted { .. } => pair(OpType::Unshutuped, OpType::MembersUnshutuped),
        ConvChange::Blocked { .. } => pair(OpType::Blocked, OpType::MembersBlocked),
        ConvChange::Unblocked { .. } => pair(OpType::Unblocked, OpType::MembersUnblocked),
        ConvChange::Updated { attrs } => {
            c.attr = Some(JsonObjectMessage { data: attrs.to_string() });
            OpType::Updated
        }
        ConvChange::RoleChanged { member, role } => {
            c.info = Some(ConvMemberInfo { pid: Some(member.clone()), role: Some(role.lc_name().to_string()), info_id: None });
            OpType::MemberInfoChanged
        }
        // LeanCloud has no word for it and is not told (`realtime/mod.rs`); were it, members left
        ConvChange::Destroyed => OpType::Left,
        // nor for these (`told`): settings, allowlists, join requests and invitations
        ConvChange::Announcement { .. }
        | ConvChange::MuteAll { .. }
        | ConvChange::Allowlisted { .. }
        | ConvChange::Unallowlisted { .. }
        | ConvChange::Settings { .. }
        | ConvChange::Request { .. } => OpType::Updated,
    };
    if !is_subject && !matches!(change, ConvChange::Updated { .. } | ConvChange::RoleChanged { .. }) {
        c.m = change.subjects();
    }
    (op, c)
}

/// Whether LeanCloud's clients hear of a change: not of what it has no push for (a destroyed
/// group, settings, allowlists, join requests and invitations), nor of who comes into or leaves
/// a chat room (LeanCloud does not tell those).
pub fn told(conv: &ConvRef, change: &ConvChange) -> bool {
    match change {
        ConvChange::Joined { .. } | ConvChange::Left { .. } => conv.kind != confab_engine::model::ConvKind::Chatroom,
        ConvChange::Updated { .. }
        | ConvChange::Muted { .. }
        | ConvChange::Unmuted { .. }
        | ConvChange::Blocked { .. }
        | ConvChange::Unblocked { .. }
        | ConvChange::RoleChanged { .. } => true,
        ConvChange::Destroyed
        | ConvChange::Announcement { .. }
        | ConvChange::MuteAll { .. }
        | ConvChange::Allowlisted { .. }
        | ConvChange::Unallowlisted { .. }
        | ConvChange::Settings { .. }
        | ConvChange::Request { .. } => false,
    }
}

pub fn conv_push(op: OpType, c: ConvCommand, server_ts: i64) -> GenericCommand {
    GenericCommand { server_ts: Some(server_ts), conv_message: Some(c), ..command(CommandType::Conv, Some(op)) }
}

/// The same change as a `/1.1/rtm/notifications` entry: the push's fields as JSON, with `cmd`,
/// `op` and `serverTs` (the SDK dispatches each entry as if it had been pushed).
pub fn conv_notification(op: OpType, c: &ConvCommand, server_ts: i64) -> Value {
    let mut o = json!({"cmd": "conv", "op": op.as_str_name(), "serverTs": server_ts, "cid": c.cid});
    if let Some(by) = &c.init_by {
        o["initBy"] = json!(by);
    }
    if !c.m.is_empty() {
        o["m"] = json!(c.m);
    }
    if let Some(a) = &c.attr {
        o["attr"] = json!({"data": a.data});
    }
    if let Some(i) = &c.info {
        o["info"] = json!({"pid": i.pid, "role": i.role});
    }
    o
}

/// A receipt to a sender: delivered (with the message id) or read (with the reader).
pub fn receipt(conv: &ConvRef, msg: Option<&(i64, Option<String>)>, at: i64, read: bool, by: &str) -> GenericCommand {
    GenericCommand {
        rcp_message: Some(RcpCommand {
            id: msg.map(|(id, foreign)| mid_of(*id, foreign.as_deref())),
            cid: Some(cid_of(conv)),
            t: Some(at),
            read: read.then_some(true),
            from: read.then(|| by.to_string()),
        }),
        ..command(CommandType::Rcp, None)
    }
}

/// The end of a session, pushed: `code` 4111 means a login elsewhere (`conflict`), anything
/// else `close`.
pub fn session_closed(code: i32, reason: &str) -> GenericCommand {
    GenericCommand {
        session_message: Some(SessionCommand { code: Some(code), reason: Some(reason.to_string()), ..Default::default() }),
        ..command(CommandType::Session, Some(OpType::Closed))
    }
}

/// One history item.
pub fn log_item(m: &Message, read_at: Option<i64>) -> LogItem {
    let (data, bin) = crate::render::data(m);
    LogItem {
        from: Some(m.from.clone()),
        data: Some(data),
        timestamp: Some(m.timestamp),
        msg_id: Some(mid(m)),
        ack_at: m.ack_at,
        read_at,
        patch_timestamp: m.recalled_at.or(m.edited_at),
        mention_all: Some(m.mention_all),
        mention_pids: m.mentions.clone(),
        bin: Some(bin),
        conv_type: None,
    }
}

/// A conversation's unread count with its newest message.
pub fn unread_tuple(cid: String, count: i64, last: Option<&Message>, mentioned: bool) -> UnreadTuple {
    let mut t = UnreadTuple { cid, unread: count.min(i32::MAX as i64) as i32, mentioned: Some(mentioned), ..Default::default() };
    if let Some(m) = last {
        let (data, binary_msg) = content(m);
        t.mid = Some(mid(m));
        t.timestamp = Some(m.timestamp);
        t.from = Some(m.from.clone());
        t.data = data;
        t.binary_msg = binary_msg;
        t.patch_timestamp = m.recalled_at.or(m.edited_at);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_engine::model::{ConvKind, Role};

    fn conv(kind: ConvKind) -> ConvRef {
        ConvRef { id: 7, kind, foreign_id: None }
    }

    #[test]
    fn an_imported_conversation_and_message_go_by_their_leancloud_ids() {
        let c = ConvRef { id: 7, kind: ConvKind::Normal, foreign_id: Some("5a5ecde6c3422b738c8779d7".into()) };
        let m =
            Message { foreign_id: Some("4XC_IHK+Ry6CXzIPq_nc7Q".into()), ..Message::new(1, 99, 7, "tom", 5, Content::Text("hi".into())) };
        let d = direct(&m, &c, 6).direct_message.unwrap();
        assert_eq!((d.cid.as_deref(), d.id.as_deref()), (Some("5a5ecde6c3422b738c8779d7"), Some("4XC_IHK+Ry6CXzIPq_nc7Q")));
        let r = receipt(&c, Some(&(99, m.foreign_id.clone())), 7, false, "x").rcp_message.unwrap();
        assert_eq!(r.id.as_deref(), Some("4XC_IHK+Ry6CXzIPq_nc7Q"));
        let own = Message::new(1, 99, 7, "tom", 5, Content::Text("hi".into()));
        assert_eq!(direct(&own, &conv(ConvKind::Temporary), 6).direct_message.unwrap().cid.as_deref(), Some("_tmp:7"));
    }

    #[test]
    fn subjects_and_others_hear_different_ops() {
        let change = ConvChange::Joined { members: vec!["bob".into()] };
        let (op, c) = conv_change(&conv(ConvKind::Normal), Some("alice"), &change, "bob");
        assert_eq!((op, c.cid.as_deref(), c.init_by.as_deref(), c.m.len()), (OpType::Joined, Some("7"), Some("alice"), 0));
        let (op, c) = conv_change(&conv(ConvKind::Normal), Some("alice"), &change, "carol");
        assert_eq!((op, c.m), (OpType::MembersJoined, vec!["bob".to_string()]));
        let (op, c) =
            conv_change(&conv(ConvKind::Temporary), None, &ConvChange::RoleChanged { member: "bob".into(), role: Role::Admin }, "x");
        assert_eq!((op, c.cid.as_deref(), c.info.unwrap().role.as_deref()), (OpType::MemberInfoChanged, Some("_tmp:7"), Some("Manager")));
    }

    #[test]
    fn notifications_carry_the_push_fields() {
        let change = ConvChange::Updated { attrs: json!({"name": "n"}) };
        let (op, c) = conv_change(&conv(ConvKind::Normal), Some("alice"), &change, "bob");
        let n = conv_notification(op, &c, 5);
        assert_eq!(
            n,
            json!({"cmd": "conv", "op": "updated", "serverTs": 5, "cid": "7", "initBy": "alice", "attr": {"data": "{\"name\":\"n\"}"}})
        );
    }
}
