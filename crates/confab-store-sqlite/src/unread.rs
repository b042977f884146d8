//! Unread counts whose work does not grow with the history.
//!
//! A member's unread messages in a conversation are those after their read cursor that are not
//! their own, not recalled, and visible to them. Counting them all would read every one of them
//! (a member who never reads makes a login read the whole history), so each conversation's count
//! is bounded ([`UnreadBounds`]), and every statement walks an index from a cursor:
//!
//! * messages to everyone: `messages_seq` downwards from the newest, over at most `scan_max`
//!   messages after the read cursor, stopping at `count_max` counted;
//! * messages addressed to the member alone: their own index (`message_users_inbox`, by user,
//!   conversation and sequence), wherever they lie after the cursor, at most `scan_max`;
//! * whether an unread message mentions the member, further back than the counted ones: the
//!   messages that mention someone (`messages_mentioning`), at most `scan_max` of them.
//!
//! The member's conversations come from `members_user`; those whose newest message is not after
//! the read cursor are skipped without touching a message.

use confab_engine::model::{ConvKind, UnreadEntry};
use confab_engine::query::UnreadBounds;
use confab_engine::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};

use crate::pool::sql_err;
use crate::rows::{msg_row, MSG_COLS};
use crate::Cached;

/// The kinds of conversation whose messages count as unread: all but chat rooms.
const UNREAD_KINDS: &str = "1, 3, 4, 5";

/// A conversation of the member with messages after their read cursor.
struct Candidate {
    conv: i64,
    kind: i64,
    foreign_id: Option<String>,
    read_seq: i64,
    last_seq: i64,
}

/// What one conversation holds unread for the member.
struct Unread {
    count: i64,
    /// The sequence number of the newest unread message.
    newest: Option<i64>,
    mentioned: bool,
}

/// The member's conversations (one, or all) with messages after the read cursor, most recently
/// active first; with `since`, only those whose last message is after it.
fn candidates(c: &Connection, app: i64, user: &str, conv: Option<i64>, since: i64) -> Result<Vec<Candidate>> {
    let one = if conv.is_some() { "AND mb.conv = ?3" } else { "" };
    let sql = format!(
        "SELECT mb.conv, c.kind, mb.read_seq, c.last_seq, c.foreign_id FROM members mb CROSS JOIN conversations c
         WHERE mb.app = ?1 AND mb.user = ?2 {one} AND c.app = mb.app AND c.id = mb.conv
           AND c.kind IN ({UNREAD_KINDS}) AND c.last_seq > mb.read_seq AND c.last_message_at > ?4
         ORDER BY c.last_message_at DESC, c.id DESC"
    );
    let mut st = c.prepare_cached(&sql).map_err(sql_err)?;
    let rows = st
        .query_map(params![app, user, conv, since], |r| {
            Ok(Candidate { conv: r.get(0)?, kind: r.get(1)?, read_seq: r.get(2)?, last_seq: r.get(3)?, foreign_id: r.get(4)? })
        })
        .map_err(sql_err)?;
    rows.collect::<rusqlite::Result<_>>().map_err(sql_err)
}

/// `1` if the message aliased `m` mentions the member (`?4`).
const MENTIONS_ME: &str = "(m.mention_all = 1 OR EXISTS (SELECT 1 FROM json_each(m.mentions) j WHERE j.value = ?4))";

/// Count one conversation's unread messages within `b`.
fn count(c: &Connection, app: i64, user: &str, cand: &Candidate, b: UnreadBounds) -> Result<Unread> {
    let window_floor = cand.read_seq.max(cand.last_seq - b.scan_max);
    // messages to everyone: the newest first, within the window, up to the cap
    let (open, open_newest, open_oldest, open_mention): (i64, Option<i64>, Option<i64>, Option<bool>) = c
        .prepare_cached_row(
            &format!(
                "SELECT COUNT(*), MAX(seq), MIN(seq), MAX(mentioned) FROM (
                   SELECT m.seq AS seq, {MENTIONS_ME} AS mentioned FROM messages m INDEXED BY messages_seq
                   WHERE m.app = ?1 AND m.conv = ?2 AND m.seq > ?3 AND m.restricted = 0 AND m.sender <> ?4
                     AND m.recalled_at IS NULL
                     AND NOT EXISTS (SELECT 1 FROM message_users mu
                                     WHERE mu.app = m.app AND mu.msg = m.id AND mu.user = ?4 AND mu.visible = 0)
                   ORDER BY m.seq DESC LIMIT ?5)"
            ),
            params![app, cand.conv, window_floor, user, b.count_max],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .map_err(sql_err)?;
    // messages addressed to the member alone, wherever they are after the cursor
    let (mine, mine_newest, mine_mention): (i64, Option<i64>, Option<bool>) = c
        .prepare_cached_row(
            &format!(
                "SELECT COUNT(*), MAX(seq), MAX(mentioned) FROM (
                   SELECT m.seq AS seq, {MENTIONS_ME} AS mentioned
                   FROM (SELECT mu.msg FROM message_users mu INDEXED BY message_users_inbox
                         WHERE mu.app = ?1 AND mu.user = ?4 AND mu.conv = ?2 AND mu.seq > ?3 AND mu.visible = 1
                         ORDER BY mu.seq DESC LIMIT ?6) x
                   CROSS JOIN messages m ON m.app = ?1 AND m.id = x.msg
                   WHERE m.sender <> ?4 AND m.recalled_at IS NULL
                   ORDER BY m.seq DESC LIMIT ?5)"
            ),
            params![app, cand.conv, cand.read_seq, user, b.count_max, b.scan_max],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .map_err(sql_err)?;
    let mut mentioned = open_mention == Some(true) || mine_mention == Some(true);
    // a mention among the messages to everyone that the count did not reach
    let unseen_top = match open_oldest {
        Some(oldest) if open == b.count_max => oldest - 1,
        _ => window_floor,
    };
    if !mentioned && unseen_top > cand.read_seq {
        mentioned = c
            .prepare_cached_row(
                &format!(
                    "SELECT EXISTS (SELECT 1 FROM (
                       SELECT m.id, m.sender, m.recalled_at, m.restricted, m.mention_all, m.mentions
                       FROM messages m INDEXED BY messages_mentioning
                       WHERE m.app = ?1 AND m.conv = ?2 AND m.seq > ?3 AND m.seq <= ?5
                         AND (m.mention_all = 1 OR m.mentions IS NOT NULL)
                       ORDER BY m.seq DESC LIMIT ?6) m
                     WHERE m.restricted = 0 AND m.sender <> ?4 AND m.recalled_at IS NULL AND {MENTIONS_ME}
                       AND NOT EXISTS (SELECT 1 FROM message_users mu
                                       WHERE mu.app = ?1 AND mu.msg = m.id AND mu.user = ?4 AND mu.visible = 0))"
                ),
                params![app, cand.conv, cand.read_seq, user, unseen_top, b.scan_max],
                |r| r.get(0),
            )
            .map_err(sql_err)?;
    }
    Ok(Unread { count: (open + mine).min(b.count_max), newest: open_newest.max(mine_newest), mentioned })
}

/// The member's unread messages in one conversation, or in all (the sum of each one's count).
pub fn total(c: &Connection, app: i64, user: &str, conv: Option<i64>, b: UnreadBounds) -> Result<i64> {
    // one snapshot for the conversations' last messages and the messages counted
    let _snapshot = c.unchecked_transaction().map_err(sql_err)?;
    let mut total = 0;
    for cand in candidates(c, app, user, conv, i64::MIN)? {
        total += count(c, app, user, &cand, b)?.count;
    }
    Ok(total)
}

/// The member's conversations with unread messages, most recently active first, at most `limit`.
pub fn summary(c: &Connection, app: i64, user: &str, since: i64, limit: i64, b: UnreadBounds) -> Result<Vec<UnreadEntry>> {
    let _snapshot = c.unchecked_transaction().map_err(sql_err)?;
    let mut out = Vec::new();
    for cand in candidates(c, app, user, None, since)? {
        if out.len() as i64 >= limit {
            break;
        }
        let u = count(c, app, user, &cand, b)?;
        let Some(newest) = u.newest.filter(|_| u.count > 0) else { continue };
        let kind = ConvKind::from_code(cand.kind).ok_or_else(|| Error::internal("unknown conversation kind"))?;
        let last = c
            .prepare_cached_row(
                &format!("SELECT {MSG_COLS} FROM messages m WHERE m.app = ?1 AND m.conv = ?2 AND m.seq = ?3"),
                params![app, cand.conv, newest],
                msg_row,
            )
            .optional()
            .map_err(sql_err)?;
        out.push(UnreadEntry { conv: cand.conv, kind, foreign_id: cand.foreign_id, count: u.count, last, mentioned: u.mentioned });
    }
    Ok(out)
}
