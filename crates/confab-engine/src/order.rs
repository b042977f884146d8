//! Deliveries of a conversation leave in its sequence order.
//!
//! Messages get their sequence number when they commit, many at once (group commit); the tasks
//! that sent them then wake in any order. Published as they woke, four senders in one
//! conversation produced pushes out of order, and every client saw the same wrong order.
//!
//! So each send takes a [`Ticket`] before it stores its message and hands its event back with
//! the message's sequence number; events leave in sequence order. Event `h` (the smallest
//! waiting) leaves when it is the known next number, or when no send that could still get a
//! smaller number is in flight. A send that started after `h` was stored gets a larger number
//! (the store assigns numbers in commit order), so only sends that started before `h` reported
//! can hold `h` back, and they are finitely many: nothing waits on a number that will never come
//! (one taken by another process, or by a send that failed or was dropped).
//!
//! Per process, and only for this process's sends; unrelated conversations never wait on each
//! other (the state is per conversation, sharded).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::bus::{Bus, Event};

const SHARDS: usize = 16;

#[derive(Default)]
struct ConvOrder {
    /// The next sequence number to release, once known.
    next: Option<i64>,
    /// Reports received so far (a logical clock).
    reports: u64,
    /// Sends in flight: ticket → the clock when it started.
    inflight: HashMap<u64, u64>,
    /// Reported, not yet released: sequence → (clock when reported, the event if any).
    waiting: BTreeMap<i64, (u64, Option<Event>)>,
}

impl ConvOrder {
    /// Release what may go, in order.
    fn drain(&mut self, bus: &dyn Bus) {
        while let Some((&seq, &(reported, _))) = self.waiting.first_key_value() {
            let blocked = self.inflight.values().any(|&started| started < reported);
            if self.next != Some(seq) && blocked {
                break;
            }
            if let Some((_, Some(ev))) = self.waiting.remove(&seq) {
                bus.deliver(ev);
            }
            self.next = Some(seq + 1);
        }
    }

    fn idle(&self) -> bool {
        self.inflight.is_empty() && self.waiting.is_empty()
    }
}

type Shard = Mutex<HashMap<(i64, i64), ConvOrder>>;

pub struct Sequencer {
    bus: Arc<dyn Bus>,
    shards: Vec<Shard>,
    tickets: std::sync::atomic::AtomicU64,
}

impl Sequencer {
    pub fn new(bus: Arc<dyn Bus>) -> Arc<Sequencer> {
        Arc::new(Sequencer { bus, shards: (0..SHARDS).map(|_| Mutex::default()).collect(), tickets: Default::default() })
    }

    fn shard(&self, conv: i64) -> &Shard {
        &self.shards[conv.rem_euclid(SHARDS as i64) as usize]
    }

    /// A send to `(app, conv)` is about to store its message.
    pub fn begin(self: &Arc<Self>, app: i64, conv: i64) -> Ticket {
        let id = self.tickets.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut shard = self.shard(conv).lock();
        let o = shard.entry((app, conv)).or_default();
        o.inflight.insert(id, o.reports);
        Ticket { seq: self.clone(), key: (app, conv), id, done: false }
    }

    fn finish(&self, key: (i64, i64), id: u64, stored: Option<(i64, Option<Event>)>) {
        let mut shard = self.shard(key.1).lock();
        let Some(o) = shard.get_mut(&key) else { return };
        o.inflight.remove(&id);
        if let Some((seq, ev)) = stored {
            o.reports += 1;
            o.waiting.insert(seq, (o.reports, ev));
        }
        o.drain(self.bus.as_ref());
        if o.idle() {
            shard.remove(&key);
        }
    }

    /// Conversations with sends in flight or events waiting (bounded by the sends in flight).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One send's place in its conversation's order. Report the stored message with
/// [`Ticket::stored`]; dropped without a report (the store failed, the send was abandoned), it
/// steps aside.
pub struct Ticket {
    seq: Arc<Sequencer>,
    key: (i64, i64),
    id: u64,
    done: bool,
}

impl Ticket {
    /// The message got sequence number `seq`; publish `event` (None: nothing to tell) when its
    /// turn comes.
    pub fn stored(mut self, seq: i64, event: Option<Event>) {
        self.done = true;
        self.seq.finish(self.key, self.id, Some((seq, event)));
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.done {
            self.seq.finish(self.key, self.id, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::LocalBus;

    fn ev(seq: i64) -> Event {
        Event::Receipt {
            app: 1,
            to: "a".into(),
            conv: crate::model::ConvRef { id: 7, kind: crate::model::ConvKind::Normal, foreign_id: None },
            msg: Some((seq, None)),
            at: 0,
            read: false,
            by: "b".into(),
        }
    }

    fn order_of(rx: &mut crate::bus::EventReceiver) -> Vec<i64> {
        let mut out = Vec::new();
        while let Ok(e) = rx.try_recv() {
            if let Event::Receipt { msg: Some((s, _)), .. } = &*e {
                out.push(*s);
            }
        }
        out
    }

    fn setup() -> (Arc<Sequencer>, crate::bus::EventReceiver) {
        let bus = Arc::new(LocalBus::default());
        let rx = bus.subscribe();
        (Sequencer::new(bus), rx)
    }

    #[test]
    fn a_later_number_waits_for_an_earlier_send() {
        let (s, mut rx) = setup();
        let a = s.begin(1, 7);
        let b = s.begin(1, 7);
        // b's message committed as 11 and woke first; a holds 10
        b.stored(11, Some(ev(11)));
        assert_eq!(order_of(&mut rx), Vec::<i64>::new(), "11 waits: a may hold a smaller number");
        a.stored(10, Some(ev(10)));
        assert_eq!(order_of(&mut rx), vec![10, 11]);
        assert!(s.is_empty(), "an idle conversation is forgotten");
    }

    #[test]
    fn a_send_that_starts_later_never_holds_back_an_earlier_number() {
        let (s, mut rx) = setup();
        let a = s.begin(1, 7);
        a.stored(5, Some(ev(5)));
        assert_eq!(order_of(&mut rx), vec![5]);
        // steady traffic: c starts after 6 was stored, so it cannot hold 6 back
        let b = s.begin(1, 7);
        b.stored(6, Some(ev(6)));
        let c = s.begin(1, 7);
        assert_eq!(order_of(&mut rx), vec![6]);
        // a number taken elsewhere (another process) is a gap nobody here fills
        let d = s.begin(1, 7);
        d.stored(9, Some(ev(9)));
        assert_eq!(order_of(&mut rx), Vec::<i64>::new(), "c started before 9 was stored: it might hold 7 or 8");
        drop(c);
        assert_eq!(order_of(&mut rx), vec![9], "c gave up: 9 goes");
    }

    #[test]
    fn failures_and_silent_reports_step_aside_and_conversations_are_independent() {
        let (s, mut rx) = setup();
        let a = s.begin(1, 7);
        let b = s.begin(1, 7);
        let other = s.begin(1, 8);
        b.stored(2, Some(ev(2)));
        a.stored(1, None);
        assert_eq!(order_of(&mut rx), vec![2], "1 had nothing to tell; 2 follows");
        let e = s.begin(1, 7);
        drop(e);
        // conversation 8 is untouched by 7's traffic
        other.stored(40, Some(ev(40)));
        assert_eq!(order_of(&mut rx), vec![40]);
        assert!(s.is_empty());
    }
}
