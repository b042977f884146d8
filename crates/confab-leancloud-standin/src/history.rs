//! History paging with the seed's parameter semantics, over computed logs in constant memory.
//!
//! A log is sorted by (timestamp, msg-id) (msg-ids compared bytewise). A query is a range between
//! two bounds and a direction: newest first by default, between `timestamp`/`msgid` (above) and
//! `till_timestamp`/`till_msgid` (below); with `reversed`, oldest first from `timestamp`/`msgid`
//! (below) to `till_timestamp`/`till_msgid` (above). A bound excludes its own message unless
//! `include_start` / `include_stop`; a bound without a msg-id stands for its whole millisecond.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use crate::dataset::{Audience, ConvGen, ConvKind, Message};
use crate::ids;

/// Default and maximum `limit` of history queries.
pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

/// One end of a history range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bound {
    pub timestamp: i64,
    /// With a msg-id the bound is one message; without, the whole millisecond.
    pub msg_id: Option<String>,
    /// Whether the bound's own message(s) are part of the range.
    pub inclusive: bool,
}

impl Bound {
    /// Is `key` below this bound (the range lies below it)?
    fn admits_below(&self, ts: i64, id: &str) -> bool {
        match &self.msg_id {
            Some(b) => match (ts, id).cmp(&(self.timestamp, b.as_str())) {
                Ordering::Less => true,
                Ordering::Equal => self.inclusive,
                Ordering::Greater => false,
            },
            None => ts < self.timestamp || (self.inclusive && ts == self.timestamp),
        }
    }

    /// Is `key` above this bound (the range lies above it)?
    fn admits_above(&self, ts: i64, id: &str) -> bool {
        match &self.msg_id {
            Some(b) => match (ts, id).cmp(&(self.timestamp, b.as_str())) {
                Ordering::Greater => true,
                Ordering::Equal => self.inclusive,
                Ordering::Less => false,
            },
            None => ts > self.timestamp || (self.inclusive && ts == self.timestamp),
        }
    }
}

/// A history request's parameters, resolved (defaults applied).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryQuery {
    /// `timestamp` / `msgid` / `include_start`.
    pub start: Bound,
    /// `till_timestamp` / `till_msgid` / `include_stop`.
    pub stop: Bound,
    /// Oldest first.
    pub reversed: bool,
    pub limit: usize,
}

fn flag(p: &HashMap<String, String>, key: &str) -> Result<bool, String> {
    match p.get(key).map(|v| v.trim()) {
        None | Some("") | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(v) => Err(format!("Invalid value '{v}' for '{key}': a boolean is expected.")),
    }
}

fn int(p: &HashMap<String, String>, key: &str) -> Result<Option<i64>, String> {
    match p.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v.parse::<i64>().map(Some).map_err(|_| format!("Invalid value '{v}' for '{key}': an integer is expected.")),
    }
}

impl HistoryQuery {
    /// Read the query-string parameters of a history request. `now` is the default end that is
    /// "now" (`timestamp` newest first, `till_timestamp` oldest first). `max_ts` (1.1's deprecated
    /// name of `timestamp`) is accepted.
    pub fn parse(p: &HashMap<String, String>, now: i64) -> Result<HistoryQuery, String> {
        let reversed = flag(p, "reversed")?;
        let text = |k: &str| p.get(k).map(|v| v.to_string()).filter(|v| !v.is_empty());
        let ts = match int(p, "timestamp")? {
            Some(t) => Some(t),
            None => int(p, "max_ts")?,
        };
        let till = int(p, "till_timestamp")?;
        let (msgid, till_msgid) = (text("msgid"), text("till_msgid"));
        if msgid.is_some() && ts.is_none() {
            return Err("msgid must be given with timestamp, the timestamp of that message.".into());
        }
        if till_msgid.is_some() && till.is_none() {
            return Err("till_msgid must be given with till_timestamp, the timestamp of that message.".into());
        }
        let (start_default, stop_default) = if reversed { (0, now) } else { (now, 0) };
        let limit = match int(p, "limit")? {
            None => DEFAULT_LIMIT,
            Some(l) if l < 1 => DEFAULT_LIMIT,
            Some(l) => (l as usize).min(MAX_LIMIT),
        };
        Ok(HistoryQuery {
            start: Bound { timestamp: ts.unwrap_or(start_default), msg_id: msgid, inclusive: flag(p, "include_start")? },
            stop: Bound { timestamp: till.unwrap_or(stop_default), msg_id: till_msgid, inclusive: flag(p, "include_stop")? },
            reversed,
            limit,
        })
    }

    /// (lower, upper) bounds of the range.
    fn bounds(&self) -> (&Bound, &Bound) {
        if self.reversed {
            (&self.start, &self.stop)
        } else {
            (&self.stop, &self.start)
        }
    }
}

/// A snapshot of one log: a conversation's generated messages plus those appended, optionally
/// narrowed to one subscriber's copies (service conversations) or to one sender.
#[derive(Clone, Debug)]
pub(crate) struct LogView {
    gen: Arc<ConvGen>,
    appended: Arc<Vec<Message>>,
    subscriber: Option<(String, String)>,
    sender: Option<String>,
}

impl LogView {
    pub(crate) fn new(gen: Arc<ConvGen>, appended: Arc<Vec<Message>>) -> Self {
        LogView { gen, appended, subscriber: None, sender: None }
    }

    /// The per-subscriber log of a service conversation: `conv-id` = md5(convId:clientId).
    pub(crate) fn for_subscriber(mut self, client: &str) -> Self {
        debug_assert_eq!(self.gen.kind, ConvKind::Service);
        self.subscriber = Some((client.to_string(), ids::subscriber_log_id(&self.gen.id, client)));
        self
    }

    pub(crate) fn by_sender(mut self, client: &str) -> Self {
        self.sender = Some(client.to_string());
        self
    }

    fn len(&self) -> u64 {
        self.gen.generated + self.appended.len() as u64
    }

    fn key(&self, i: u64) -> (i64, String) {
        if i < self.gen.generated {
            (self.gen.ts(i), self.gen.id(i))
        } else {
            let m = &self.appended[(i - self.gen.generated) as usize];
            (m.timestamp, m.msg_id.clone())
        }
    }

    fn audience(&self, i: u64) -> Audience {
        if i < self.gen.generated {
            self.gen.audience(i)
        } else {
            self.appended[(i - self.gen.generated) as usize].audience.clone()
        }
    }

    pub(crate) fn at(&self, i: u64) -> Option<Message> {
        if i < self.len() {
            self.get_if_visible(i)
        } else {
            None
        }
    }

    fn get_if_visible(&self, i: u64) -> Option<Message> {
        if let Some((client, _)) = &self.subscriber {
            if !self.audience(i).includes(client) {
                return None;
            }
        }
        if let Some(s) = &self.sender {
            if i < self.gen.generated && self.gen.sender(i) != s {
                return None;
            }
        }
        let mut m = if i < self.gen.generated { self.gen.message(i) } else { self.appended[(i - self.gen.generated) as usize].clone() };
        if let Some(s) = &self.sender {
            if &m.from != s {
                return None;
            }
        }
        if let Some((_, log_id)) = &self.subscriber {
            m.conv_id = log_id.clone();
        }
        Some(m)
    }

    /// First index whose key satisfies `pred` when `pred` is false-then-true.
    fn first(&self, pred: impl Fn(i64, &str) -> bool) -> u64 {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let (ts, id) = self.key(mid);
            if pred(ts, &id) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    }

    /// The index range `[lo, hi)` between the bounds.
    fn range(&self, lower: Option<&Bound>, upper: Option<&Bound>) -> (u64, u64) {
        let lo = lower.map_or(0, |b| self.first(|ts, id| b.admits_above(ts, id)));
        let hi = upper.map_or(self.len(), |b| self.first(|ts, id| !b.admits_below(ts, id)));
        (lo, hi.max(lo))
    }
}

struct Head {
    msg: Message,
    view: usize,
    desc: bool,
}

impl Head {
    fn key(&self) -> (i64, &str, &str) {
        (self.msg.timestamp, &self.msg.msg_id, &self.msg.conv_id)
    }
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    // the heap pops the greatest: the newest when walking newest first, else the oldest
    fn cmp(&self, other: &Self) -> Ordering {
        let o = self.key().cmp(&other.key());
        if self.desc {
            o
        } else {
            o.reverse()
        }
    }
}

/// Several logs merged in history order (ties across logs at one (timestamp, msg-id) ordered by
/// `conv-id`); holds one message per log.
pub(crate) struct Merge {
    views: Vec<LogView>,
    ranges: Vec<(u64, u64)>,
    heap: BinaryHeap<Head>,
    desc: bool,
}

impl Merge {
    pub(crate) fn new(views: Vec<LogView>, lower: Option<&Bound>, upper: Option<&Bound>, desc: bool) -> Merge {
        let ranges = views.iter().map(|v| v.range(lower, upper)).collect();
        let mut m = Merge { views, ranges, heap: BinaryHeap::new(), desc };
        for v in 0..m.views.len() {
            if let Some(msg) = m.pull(v) {
                m.heap.push(Head { msg, view: v, desc });
            }
        }
        m
    }

    pub(crate) fn all(views: Vec<LogView>, desc: bool) -> Merge {
        Merge::new(views, None, None, desc)
    }

    pub(crate) fn query(views: Vec<LogView>, q: &HistoryQuery) -> Merge {
        let (lower, upper) = q.bounds();
        Merge::new(views, Some(lower), Some(upper), !q.reversed)
    }

    /// The next visible message of one log, in walking order.
    fn pull(&mut self, v: usize) -> Option<Message> {
        let view = &self.views[v];
        let (lo, hi) = &mut self.ranges[v];
        while lo < hi {
            let i = if self.desc {
                *hi -= 1;
                *hi
            } else {
                *lo += 1;
                *lo - 1
            };
            if let Some(m) = view.get_if_visible(i) {
                return Some(m);
            }
        }
        None
    }
}

impl Iterator for Merge {
    type Item = Message;
    fn next(&mut self) -> Option<Message> {
        let head = self.heap.pop()?;
        if let Some(msg) = self.pull(head.view) {
            self.heap.push(Head { msg, view: head.view, desc: self.desc });
        }
        Some(head.msg)
    }
}

/// One page of a history query over some logs.
pub(crate) fn page(views: Vec<LogView>, q: &HistoryQuery) -> Vec<Message> {
    Merge::query(views, q).take(q.limit).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{ConvKind, Dataset, DatasetSpec};

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn run(ds: &Dataset, conv: &str, p: &[(&str, &str)]) -> Vec<Message> {
        let q = HistoryQuery::parse(&params(p), ids::now_ms()).unwrap();
        let view = ds.inner.read().conv(conv).unwrap().view();
        page(vec![view], &q)
    }

    fn three() -> (std::sync::Arc<Dataset>, String, Vec<Message>) {
        let spec = DatasetSpec {
            groups: 1,
            unique_pairs: 0,
            chat_rooms: 0,
            services: 0,
            messages_per_conversation: 3,
            same_ms_every: 0,
            ..Default::default()
        };
        let ds = Dataset::generate(spec);
        let g = ds.conversation_ids(ConvKind::Group)[0].clone();
        let msgs: Vec<Message> = ds.messages(&g).collect();
        assert!(msgs[0].timestamp < msgs[1].timestamp && msgs[1].timestamp < msgs[2].timestamp);
        (ds, g, msgs)
    }

    #[test]
    fn the_seeds_truth_table() {
        let (ds, g, m) = three();
        let (t1, t3) = (m[0].timestamp.to_string(), m[2].timestamp.to_string());
        let (id1, id3) = (m[0].msg_id.as_str(), m[2].msg_id.as_str());
        let ids = |v: Vec<Message>| v.into_iter().map(|m| m.msg_id).collect::<Vec<_>>();
        let down = [("timestamp", t3.as_str()), ("msgid", id3), ("till_timestamp", t1.as_str()), ("till_msgid", id1)];
        let up = [("timestamp", t1.as_str()), ("msgid", id1), ("till_timestamp", t3.as_str()), ("till_msgid", id3), ("reversed", "true")];
        let with = |base: &[(&'static str, &str)], extra: &[(&'static str, &'static str)]| {
            let mut v: Vec<(&str, &str)> = base.iter().map(|(k, v)| (*k, *v)).collect();
            v.extend_from_slice(extra);
            ids(run(&ds, &g, &v))
        };
        let (id1, id2, id3) = (m[0].msg_id.clone(), m[1].msg_id.clone(), m[2].msg_id.clone());
        assert_eq!(with(&down, &[]), vec![id2.clone()]);
        assert_eq!(with(&down, &[("include_start", "true")]), vec![id3.clone(), id2.clone()]);
        assert_eq!(with(&down, &[("include_stop", "true")]), vec![id2.clone(), id1.clone()]);
        assert_eq!(with(&up, &[]), vec![id2.clone()]);
        assert_eq!(with(&up, &[("include_start", "true")]), vec![id1.clone(), id2.clone()]);
        assert_eq!(with(&up, &[("include_stop", "true")]), vec![id2.clone(), id3.clone()]);
        // defaults: everything, newest first; reversed: oldest first
        assert_eq!(ids(run(&ds, &g, &[])), vec![id3.clone(), id2.clone(), id1.clone()]);
        assert_eq!(ids(run(&ds, &g, &[("reversed", "true")])), vec![id1.clone(), id2.clone(), id3.clone()]);
        assert_eq!(ids(run(&ds, &g, &[("limit", "2")])), vec![id3.clone(), id2.clone()]);
        // a bound without msgid is its whole millisecond
        assert_eq!(ids(run(&ds, &g, &[("timestamp", &t3)])), vec![id2.clone(), id1.clone()]);
        assert_eq!(ids(run(&ds, &g, &[("timestamp", &t3), ("include_start", "true")])), vec![id3, id2, id1]);
    }

    #[test]
    fn parameters() {
        let now = 1_000_000;
        let q = HistoryQuery::parse(&params(&[]), now).unwrap();
        assert_eq!((q.start.timestamp, q.stop.timestamp, q.reversed, q.limit), (now, 0, false, 100));
        let q = HistoryQuery::parse(&params(&[("reversed", "true"), ("limit", "5000")]), now).unwrap();
        assert_eq!((q.start.timestamp, q.stop.timestamp, q.reversed, q.limit), (0, now, true, 1000));
        assert!(HistoryQuery::parse(&params(&[("msgid", "x")]), now).is_err());
        assert!(HistoryQuery::parse(&params(&[("till_msgid", "x")]), now).is_err());
        assert!(HistoryQuery::parse(&params(&[("timestamp", "soon")]), now).is_err());
        assert!(HistoryQuery::parse(&params(&[("reversed", "yes")]), now).is_err());
        assert_eq!(HistoryQuery::parse(&params(&[("max_ts", "7")]), now).unwrap().start.timestamp, 7);
    }

    /// Walk a whole log page by page, the way an importer does; every message once, in order.
    fn walk(ds: &Dataset, conv: &str, limit: usize, reversed: bool) -> Vec<Message> {
        let mut out: Vec<Message> = Vec::new();
        let limit = limit.to_string();
        loop {
            let mut p = vec![("limit", limit.clone())];
            if reversed {
                p.push(("reversed", "true".into()));
            }
            if let Some(last) = out.last() {
                p.push(("timestamp", last.timestamp.to_string()));
                p.push(("msgid", last.msg_id.clone()));
            }
            let p: Vec<(&str, &str)> = p.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let page = run(ds, conv, &p);
            if page.is_empty() {
                return out;
            }
            out.extend(page);
        }
    }

    #[test]
    fn paging_walks_every_message_once_in_both_directions() {
        let spec = DatasetSpec {
            groups: 1,
            unique_pairs: 0,
            chat_rooms: 0,
            services: 0,
            messages_per_conversation: 5_003,
            same_ms_every: 3,
            ..Default::default()
        };
        let ds = Dataset::generate(spec);
        let g = ds.conversation_ids(ConvKind::Group)[0].clone();
        ds.append(&g, 40).unwrap();
        let oldest_first: Vec<Message> = ds.messages(&g).collect();
        assert_eq!(oldest_first.len(), 5_043);
        let ties = oldest_first.windows(2).filter(|w| w[0].timestamp == w[1].timestamp).count();
        assert!(ties > 1000, "{ties}");
        let newest_first: Vec<Message> = oldest_first.iter().rev().cloned().collect();
        for limit in [1000, 7, 2] {
            assert_eq!(walk(&ds, &g, limit, true), oldest_first, "oldest first, limit {limit}");
            assert_eq!(walk(&ds, &g, limit, false), newest_first, "newest first, limit {limit}");
        }
    }
}
