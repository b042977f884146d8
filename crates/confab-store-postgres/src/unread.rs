//! Unread counts whose work does not grow with the history (the embedded store's `unread.rs`).
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
//! the read cursor are skipped without touching a message. A count or a summary reads one
//! snapshot (a `REPEATABLE READ` transaction): the conversations' last messages and the messages
//! counted agree.

use confab_engine::model::{ConvKind, UnreadEntry};
use confab_engine::query::UnreadBounds;
use confab_engine::{Error, Result};
use deadpool_postgres::{Client, Transaction};
use tokio_postgres::IsolationLevel;

use crate::rows::{get, msg_row, MSG_COLS};
use crate::{pg_err, Conn};

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

/// Whether the message aliased `m` mentions the member (`$4`): `mentions` is a JSON array of
/// user ids, kept as text.
const MENTIONS_ME: &str = "(m.mention_all OR COALESCE(m.mentions::JSONB ? $4, false))";

/// A read-only transaction on one snapshot.
async fn snapshot(c: &mut Client) -> Result<Transaction<'_>> {
    c.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start().await.map_err(pg_err)
}

/// The member's conversations (one, or all) with messages after the read cursor, most recently
/// active first; only those whose last message is after `since`.
async fn candidates(c: &impl Conn, app: i64, user: &str, conv: Option<i64>, since: i64) -> Result<Vec<Candidate>> {
    let sql = |one: &str| {
        format!(
            "SELECT mb.conv, c.kind, mb.read_seq, c.last_seq, c.foreign_id FROM members mb
             JOIN conversations c ON c.app = mb.app AND c.id = mb.conv
             WHERE mb.app = $1 AND mb.user_id = $2 {one} AND c.kind IN ({UNREAD_KINDS}) AND c.last_seq > mb.read_seq
               AND c.last_message_at > $3
             ORDER BY c.last_message_at DESC, c.id DESC"
        )
    };
    let rows = match conv {
        Some(conv) => c.rows(&sql("AND mb.conv = $4"), &[&app, &user, &since, &conv]).await?,
        None => c.rows(&sql(""), &[&app, &user, &since]).await?,
    };
    rows.iter()
        .map(|r| Ok(Candidate { conv: get(r, 0)?, kind: get(r, 1)?, read_seq: get(r, 2)?, last_seq: get(r, 3)?, foreign_id: get(r, 4)? }))
        .collect()
}

/// Messages to everyone after `floor` (the newest first, at most `count_max`): their count, the
/// newest and oldest counted, and whether one mentions the member.
async fn count_open(
    c: &impl Conn,
    app: i64,
    user: &str,
    conv: i64,
    floor: i64,
    b: UnreadBounds,
) -> Result<(i64, Option<i64>, Option<i64>, bool)> {
    let r = c
        .one(
            &format!(
                "SELECT COUNT(*), MAX(seq), MIN(seq), COALESCE(bool_or(mentioned), false) FROM (
                   SELECT m.seq AS seq, {MENTIONS_ME} AS mentioned FROM messages m
                   WHERE m.app = $1 AND m.conv = $2 AND m.seq > $3 AND NOT m.restricted AND m.sender <> $4
                     AND m.recalled_at IS NULL
                     AND NOT EXISTS (SELECT 1 FROM message_users mu
                                     WHERE mu.app = m.app AND mu.msg = m.id AND mu.user_id = $4 AND NOT mu.visible)
                   ORDER BY m.seq DESC LIMIT $5) x"
            ),
            &[&app, &conv, &floor, &user, &b.count_max],
        )
        .await?;
    Ok((get(&r, 0)?, get(&r, 1)?, get(&r, 2)?, get(&r, 3)?))
}

/// Messages addressed to the member alone after the read cursor, wherever they lie (at most
/// `scan_max` looked at, `count_max` counted): their count, the newest, and whether one mentions
/// the member.
async fn count_mine(c: &impl Conn, app: i64, user: &str, cand: &Candidate, b: UnreadBounds) -> Result<(i64, Option<i64>, bool)> {
    let r = c
        .one(
            &format!(
                "SELECT COUNT(*), MAX(seq), COALESCE(bool_or(mentioned), false) FROM (
                   SELECT m.seq AS seq, {MENTIONS_ME} AS mentioned
                   FROM (SELECT mu.msg FROM message_users mu
                         WHERE mu.app = $1 AND mu.user_id = $4 AND mu.conv = $2 AND mu.seq > $3 AND mu.visible
                         ORDER BY mu.seq DESC LIMIT $6) x
                   JOIN messages m ON m.app = $1 AND m.id = x.msg
                   WHERE m.sender <> $4 AND m.recalled_at IS NULL
                   ORDER BY m.seq DESC LIMIT $5) y"
            ),
            &[&app, &cand.conv, &cand.read_seq, &user, &b.count_max, &b.scan_max],
        )
        .await?;
    Ok((get(&r, 0)?, get(&r, 1)?, get(&r, 2)?))
}

/// Whether a message to everyone after the read cursor and at or before `top` mentions the
/// member, among the `scan_max` newest there that mention someone.
async fn mention_below(c: &impl Conn, app: i64, user: &str, cand: &Candidate, top: i64, b: UnreadBounds) -> Result<bool> {
    let r = c
        .one(
            &format!(
                "SELECT EXISTS (SELECT 1 FROM (
                   SELECT m.id, m.sender, m.recalled_at, m.restricted, m.mention_all, m.mentions FROM messages m
                   WHERE m.app = $1 AND m.conv = $2 AND m.seq > $3 AND m.seq <= $5
                     AND (m.mention_all OR m.mentions IS NOT NULL)
                   ORDER BY m.seq DESC LIMIT $6) m
                 WHERE NOT m.restricted AND m.sender <> $4 AND m.recalled_at IS NULL AND {MENTIONS_ME}
                   AND NOT EXISTS (SELECT 1 FROM message_users mu
                                   WHERE mu.app = $1 AND mu.msg = m.id AND mu.user_id = $4 AND NOT mu.visible))"
            ),
            &[&app, &cand.conv, &cand.read_seq, &user, &top, &b.scan_max],
        )
        .await?;
    get(&r, 0)
}

/// Count one conversation's unread messages within `b`.
async fn count(c: &impl Conn, app: i64, user: &str, cand: &Candidate, b: UnreadBounds) -> Result<Unread> {
    let window_floor = cand.read_seq.max(cand.last_seq.saturating_sub(b.scan_max));
    let (open, open_newest, open_oldest, open_mention) = count_open(c, app, user, cand.conv, window_floor, b).await?;
    let (mine, mine_newest, mine_mention) = count_mine(c, app, user, cand, b).await?;
    let mut mentioned = open_mention || mine_mention;
    // a mention among the messages to everyone that the count did not reach
    let unseen_top = match open_oldest {
        Some(oldest) if open == b.count_max => oldest - 1,
        _ => window_floor,
    };
    if !mentioned && unseen_top > cand.read_seq {
        mentioned = mention_below(c, app, user, cand, unseen_top, b).await?;
    }
    Ok(Unread { count: (open + mine).min(b.count_max), newest: open_newest.max(mine_newest), mentioned })
}

/// Bounds PostgreSQL takes as `LIMIT`s (a negative one is refused there): at least zero.
fn non_negative(b: UnreadBounds) -> UnreadBounds {
    UnreadBounds { count_max: b.count_max.max(0), scan_max: b.scan_max.max(0) }
}

/// The member's unread messages in one conversation, or in all (the sum of each one's count).
pub async fn total(c: &mut Client, app: i64, user: &str, conv: Option<i64>, b: UnreadBounds) -> Result<i64> {
    let b = non_negative(b);
    let tx = snapshot(c).await?;
    let mut total = 0;
    for cand in candidates(&tx, app, user, conv, i64::MIN).await? {
        total += count(&tx, app, user, &cand, b).await?.count;
    }
    tx.commit().await.map_err(pg_err)?;
    Ok(total)
}

/// The member's conversations with unread messages, most recently active first, at most `limit`.
pub async fn summary(c: &mut Client, app: i64, user: &str, since: i64, limit: i64, b: UnreadBounds) -> Result<Vec<UnreadEntry>> {
    let b = non_negative(b);
    let tx = snapshot(c).await?;
    let mut out = Vec::new();
    for cand in candidates(&tx, app, user, None, since).await? {
        if out.len() as i64 >= limit {
            break;
        }
        let u = count(&tx, app, user, &cand, b).await?;
        let Some(newest) = u.newest.filter(|_| u.count > 0) else { continue };
        let kind = ConvKind::from_code(cand.kind).ok_or_else(|| Error::internal("postgres: unknown conversation kind"))?;
        let last = tx
            .row(
                &format!("SELECT {MSG_COLS} FROM messages m WHERE m.app = $1 AND m.conv = $2 AND m.seq = $3"),
                &[&app, &cand.conv, &newest],
            )
            .await?
            .as_ref()
            .map(msg_row)
            .transpose()?;
        out.push(UnreadEntry { conv: cand.conv, kind, foreign_id: cand.foreign_id, count: u.count, last, mentioned: u.mentioned });
    }
    tx.commit().await.map_err(pg_err)?;
    Ok(out)
}
