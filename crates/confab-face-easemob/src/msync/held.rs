//! What a connection was handed and its device has not pulled yet: a pull answered from memory.
//!
//! A stored message reaches a device as `NOTICE{queue}`, and the device pulls the queue (spec
//! §6). The dispatcher has the message in hand when it hands out the NOTICE, so the encoder puts
//! the message's meta beside it (a [`Note`]); the connection writes the NOTICE and keeps the
//! meta here, by queue. A pull then takes what is kept after the device's position, in order,
//! without reading the store — when what is kept follows the position without a gap (the next
//! sequence number on), or when nothing is kept and the queue is known to be caught up (its last
//! page was answered and nothing was dropped since). Anything else (a device that was offline, a
//! message addressed to others in between, a queue that overflowed) is the store's to answer
//! (`queues.rs`).
//!
//! A recall marks its message (a recalled message is not delivered, only passed). What is kept
//! is bounded per queue and per connection; what overflows is dropped and read from the store
//! when pulled.

use std::collections::{HashMap, VecDeque};

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message as _;

use super::frames::is_group;
use super::proto::Jid;

/// A frame that starts with this byte is a [`Note`], the gateway's own, never written to a
/// socket: an msync frame never starts with it (a protobuf field number is never 0).
const TAG: u8 = 0;
/// Most messages kept per queue.
pub const PER_QUEUE: usize = 256;
/// Most bytes of metas kept per connection.
pub const BYTES_MAX: usize = 1 << 20;
/// Most queues kept per connection.
pub const QUEUES_MAX: usize = 1024;

/// The frame a connection writes, and the message it is about, as the encoder hands them out.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Note {
    /// The frame to write: the NOTICE (or, for a recall, the RECALL meta).
    #[prost(bytes = "bytes", tag = "1")]
    pub frame: Bytes,
    /// The queue, as [`queue_key`] names it.
    #[prost(string, tag = "2")]
    pub queue: String,
    #[prost(int64, tag = "3")]
    pub conv: i64,
    #[prost(int64, tag = "4")]
    pub seq: i64,
    #[prost(int64, tag = "5")]
    pub ts: i64,
    #[prost(int64, tag = "6")]
    pub id: i64,
    #[prost(string, tag = "7")]
    pub from: String,
    /// The device that sent it, when known.
    #[prost(string, optional, tag = "8")]
    pub resource: Option<String>,
    /// The encoded `Meta`, as a pull delivers it; empty for a recall.
    #[prost(bytes = "bytes", tag = "9")]
    pub meta: Bytes,
    /// The message was recalled.
    #[prost(bool, tag = "10")]
    pub recall: bool,
    /// Its sender asked for receipts.
    #[prost(bool, tag = "11")]
    pub receipt: bool,
}

impl Note {
    /// The note as a frame for the dispatcher to hand out.
    pub fn pack(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(1 + self.encoded_len());
        b.put_u8(TAG);
        self.encode(&mut b).expect("a BytesMut grows");
        b.freeze()
    }

    /// The note a frame is, if it is one.
    pub fn unpack(frame: &Bytes) -> Option<Note> {
        (frame.first() == Some(&TAG)).then(|| Note::decode(frame.slice(1..))).and_then(Result::ok)
    }
}

/// How a queue is named here: `g:<id>` for a group or chat room, `u:<peer>` for a one-to-one
/// conversation (the JID a pull names, or the encoder's queue of a message).
pub fn queue_key(jid: &Jid) -> String {
    let name = jid.name.as_deref().unwrap_or("").trim();
    if is_group(jid) {
        format!("g:{name}")
    } else {
        format!("u:{}", name.to_lowercase())
    }
}

/// Where a device got to in a conversation: the last message it got.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Pos {
    pub seq: i64,
    pub ts: i64,
    pub id: i64,
}

/// A message kept for a pull.
pub struct Kept {
    pub pos: Pos,
    pub from: String,
    pub resource: Option<String>,
    pub meta: Bytes,
    pub recalled: bool,
    pub receipt: bool,
}

struct Queue {
    conv: i64,
    kept: VecDeque<Kept>,
    /// The device's last pull of this queue was answered with its last page, and nothing was
    /// dropped since: with nothing kept, there is nothing to pull.
    caught_up: bool,
}

/// What is kept, by queue.
#[derive(Default)]
pub struct Held {
    queues: HashMap<String, Queue>,
    bytes: usize,
}

/// What a pull gets from memory: the messages after the position, in order (maybe none), and
/// whether more follow them.
pub enum Take {
    Kept(Vec<Kept>, bool),
    /// Not answerable from memory: ask the store.
    Store,
}

impl Held {
    /// Keep a note's message, in sequence order (or mark its recall). A message the device sent
    /// itself is kept too, with no meta: it is passed, not delivered, and leaves no gap.
    pub fn keep(&mut self, n: Note) {
        if self.queues.len() >= QUEUES_MAX && !self.queues.contains_key(&n.queue) {
            // the store answers every queue until each is caught up again
            self.queues.clear();
            self.bytes = 0;
        }
        let q = self.queues.entry(n.queue).or_insert_with(|| Queue { conv: n.conv, kept: VecDeque::new(), caught_up: false });
        if n.recall {
            if let Some(k) = q.kept.iter_mut().find(|k| k.pos.id == n.id) {
                k.recalled = true;
            }
            return;
        }
        let at = q.kept.iter().rposition(|k| k.pos.seq < n.seq).map_or(0, |i| i + 1);
        if q.kept.get(at).is_some_and(|k| k.pos.seq == n.seq) {
            return;
        }
        self.bytes += n.meta.len();
        q.kept.insert(
            at,
            Kept {
                pos: Pos { seq: n.seq, ts: n.ts, id: n.id },
                from: n.from,
                resource: n.resource,
                meta: n.meta,
                recalled: false,
                receipt: n.receipt,
            },
        );
        if q.kept.len() > PER_QUEUE || self.bytes > BYTES_MAX {
            // dropped: the store answers this queue until it is caught up again
            let freed: usize = q.kept.iter().map(|k| k.meta.len()).sum();
            self.bytes -= freed;
            q.kept.clear();
            q.caught_up = false;
        }
    }

    /// The conversation of a queue, if anything was kept for it.
    pub fn conv_of(&self, key: &str) -> Option<i64> {
        self.queues.get(key).map(|q| q.conv)
    }

    /// Forget what is at or before `at`.
    pub fn passed(&mut self, key: &str, at: Pos) {
        if let Some(q) = self.queues.get_mut(key) {
            while q.kept.front().is_some_and(|k| k.pos.seq <= at.seq) {
                let k = q.kept.pop_front().expect("a front");
                self.bytes -= k.meta.len();
            }
        }
    }

    /// The device's pull of `key` was answered with its last page, at `at`.
    pub fn caught_up(&mut self, key: &str, conv: i64, at: Pos) {
        self.passed(key, at);
        let q = self.queues.entry(key.to_string()).or_insert_with(|| Queue { conv, kept: VecDeque::new(), caught_up: false });
        q.caught_up = true;
    }

    /// Whether a message kept in `key` after `from` up to `to` asked for receipts.
    pub fn receipts_through(&self, key: &str, from: Pos, to: Pos) -> bool {
        self.queues.get(key).is_some_and(|q| q.kept.iter().any(|k| k.pos.seq > from.seq && k.pos.seq <= to.seq && k.receipt))
    }

    /// A message kept in `key` by its id.
    pub fn find(&self, key: &str, id: i64) -> Option<Pos> {
        self.queues.get(key)?.kept.iter().find(|k| k.pos.id == id).map(|k| k.pos)
    }

    /// What follows `at` in `key`, up to `max` messages (and the rest's presence), if memory can
    /// answer: the kept messages after `at` begin at the next sequence number and have no gap, or
    /// none are kept and the queue is caught up. Nothing is forgotten until [`Held::passed`].
    pub fn after(&self, key: &str, at: Pos, max: usize) -> Take {
        let Some(q) = self.queues.get(key) else { return Take::Store };
        let mut out = Vec::new();
        for (next, k) in (at.seq + 1..).zip(q.kept.iter().filter(|k| k.pos.seq > at.seq)) {
            if k.pos.seq != next {
                return if out.is_empty() { Take::Store } else { Take::Kept(out, true) };
            }
            if out.len() == max {
                return Take::Kept(out, true);
            }
            out.push(Kept {
                pos: k.pos,
                from: k.from.clone(),
                resource: k.resource.clone(),
                meta: k.meta.clone(),
                recalled: k.recalled,
                receipt: k.receipt,
            });
        }
        if out.is_empty() && !q.caught_up {
            return Take::Store;
        }
        Take::Kept(out, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(seq: i64) -> Note {
        Note {
            frame: Bytes::from_static(b"notice"),
            queue: "g:7".into(),
            conv: 7,
            seq,
            ts: seq * 10,
            id: 100 + seq,
            from: "alice".into(),
            meta: Bytes::from(vec![seq as u8; 4]),
            ..Default::default()
        }
    }

    fn seqs(t: Take) -> Option<Vec<i64>> {
        match t {
            Take::Kept(k, _) => Some(k.iter().map(|k| k.pos.seq).collect()),
            Take::Store => None,
        }
    }

    #[test]
    fn a_note_survives_its_frame_and_no_msync_frame_is_one() {
        let n = note(3);
        assert_eq!(Note::unpack(&n.pack()), Some(n));
        let notice = super::super::frames::notice(super::super::frames::group_jid("o#a", 7));
        assert_eq!(Note::unpack(&notice), None);
    }

    #[test]
    fn memory_answers_only_what_follows_the_position_without_a_gap() {
        let mut h = Held::default();
        let at = |seq: i64| Pos { seq, ts: seq * 10, id: 100 + seq };
        assert!(seqs(h.after("g:7", at(0), 20)).is_none(), "nothing known of the queue: the store");
        for s in [3, 4, 5] {
            h.keep(note(s));
        }
        assert_eq!(seqs(h.after("g:7", at(2), 20)), Some(vec![3, 4, 5]));
        assert_eq!(seqs(h.after("g:7", at(3), 2)), Some(vec![4, 5]));
        assert_eq!(seqs(h.after("g:7", at(4), 1)), Some(vec![5]));
        assert!(seqs(h.after("g:7", at(1), 20)).is_none(), "message 2 is missing: the store");
        h.keep(note(7));
        assert!(seqs(h.after("g:7", at(5), 20)).is_none(), "a gap before 7: the store");
        assert!(matches!(h.after("g:7", at(3), 20), Take::Kept(k, true) if k.len() == 2), "4 and 5, then the store");
        h.passed("g:7", at(5));
        assert!(seqs(h.after("g:7", at(5), 20)).is_none());
        h.caught_up("g:7", 7, at(7));
        assert_eq!(seqs(h.after("g:7", at(7), 20)), Some(vec![]), "caught up with nothing kept: an empty last page");
        let mut r = note(8);
        h.keep(r.clone());
        r.recall = true;
        h.keep(r);
        match h.after("g:7", at(7), 20) {
            Take::Kept(k, _) => assert!(k[0].recalled),
            Take::Store => panic!("kept"),
        }
    }

    #[test]
    fn messages_are_kept_in_sequence_order_whatever_order_they_come_in() {
        let mut h = Held::default();
        for s in [5, 3, 4, 4] {
            h.keep(note(s));
        }
        assert_eq!(seqs(h.after("g:7", Pos { seq: 2, ts: 20, id: 102 }, 20)), Some(vec![3, 4, 5]), "ordered, the repeat dropped");
    }

    #[test]
    fn an_overflowing_queue_is_the_stores_again() {
        let mut h = Held::default();
        h.caught_up("g:7", 7, Pos::default());
        for s in 1..=(PER_QUEUE as i64 + 1) {
            h.keep(note(s));
        }
        assert!(seqs(h.after("g:7", Pos::default(), 20)).is_none());
        assert_eq!(h.bytes, 0);
    }
}
