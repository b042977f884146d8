//! A realtime connection's outbound queue, whatever protocol it speaks (the LeanCloud and the
//! msync gateways share it): bounded in frames and in bytes. Pushes never wait (a full queue is
//! the caller's signal to close the connection); replies wait for room; one writer takes frames
//! in batches.
//!
//! Not a tokio channel: a bounded channel allocates its first block of slots (and padded
//! counters) up front, about 1.5 KB a connection, most of what an idle session used to cost.
//! An empty queue here holds no allocation, and gives back what a burst made it grow.

use std::collections::VecDeque;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

/// Why a push was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Over the frames or the bytes allowed.
    Full,
    Closed,
}

#[derive(Default)]
struct State {
    frames: VecDeque<Bytes>,
    bytes: usize,
    closed: bool,
}

pub struct OutQueue {
    state: Mutex<State>,
    max_frames: usize,
    max_bytes: usize,
    /// The writer waits here for frames…
    filled: Notify,
    /// …and a reply for room.
    drained: Notify,
}

/// Above this many slots, an emptied queue gives its memory back.
const KEEP_SLOTS: usize = 16;

impl OutQueue {
    pub fn new(max_frames: usize, max_bytes: usize) -> OutQueue {
        OutQueue { state: Mutex::default(), max_frames: max_frames.max(1), max_bytes, filled: Notify::new(), drained: Notify::new() }
    }

    /// Queue a frame now, or say why not.
    pub fn push(&self, frame: Bytes) -> Result<(), Refused> {
        let mut s = self.state.lock();
        self.enqueue(&mut s, frame)?;
        drop(s);
        self.filled.notify_one();
        Ok(())
    }

    fn enqueue(&self, s: &mut State, frame: Bytes) -> Result<(), Refused> {
        if s.closed {
            return Err(Refused::Closed);
        }
        if s.frames.len() >= self.max_frames || (!s.frames.is_empty() && s.bytes + frame.len() > self.max_bytes) {
            return Err(Refused::Full);
        }
        s.bytes += frame.len();
        s.frames.push_back(frame);
        Ok(())
    }

    /// Queue a frame, waiting for room (false if the queue closed meanwhile).
    pub async fn push_wait(&self, frame: Bytes) -> bool {
        loop {
            let room = self.drained.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            match self.push(frame.clone()) {
                Ok(()) => return true,
                Err(Refused::Closed) => return false,
                Err(Refused::Full) => room.await,
            }
        }
    }

    /// Up to `max` frames, waiting for at least one; None once closed.
    pub async fn take(&self, max: usize) -> Option<Vec<Bytes>> {
        loop {
            let filled = self.filled.notified();
            tokio::pin!(filled);
            filled.as_mut().enable();
            {
                let mut s = self.state.lock();
                if s.closed {
                    return None;
                }
                if !s.frames.is_empty() {
                    let n = s.frames.len().min(max);
                    let batch: Vec<Bytes> = s.frames.drain(..n).collect();
                    s.bytes -= batch.iter().map(Bytes::len).sum::<usize>();
                    if s.frames.is_empty() && s.frames.capacity() > KEEP_SLOTS {
                        s.frames = VecDeque::new();
                    }
                    drop(s);
                    self.drained.notify_one();
                    return Some(batch);
                }
            }
            filled.await;
        }
    }

    /// What is queued now, without waiting (a closing connection writes it before its close
    /// frame).
    pub fn drain(&self) -> Vec<Bytes> {
        let mut s = self.state.lock();
        s.bytes = 0;
        let out: Vec<Bytes> = std::mem::take(&mut s.frames).into();
        drop(s);
        self.drained.notify_waiters();
        out
    }

    /// No more frames in or out; what is queued is dropped.
    pub fn close(&self) {
        let mut s = self.state.lock();
        s.closed = true;
        s.frames = VecDeque::new();
        s.bytes = 0;
        drop(s);
        self.filled.notify_waiters();
        self.drained.notify_waiters();
    }

    /// (frames, bytes) queued now.
    #[cfg(test)]
    pub fn len(&self) -> (usize, usize) {
        let s = self.state.lock();
        (s.frames.len(), s.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: usize) -> Bytes {
        Bytes::from(vec![0u8; n])
    }

    #[tokio::test]
    async fn bounded_in_frames_and_in_bytes() {
        let q = OutQueue::new(3, 100);
        q.push(frame(10)).unwrap();
        q.push(frame(10)).unwrap();
        q.push(frame(10)).unwrap();
        assert_eq!(q.push(frame(1)), Err(Refused::Full), "three frames is the most");
        assert_eq!(q.take(2).await.unwrap().len(), 2);
        assert_eq!(q.len(), (1, 10));
        assert_eq!(q.push(frame(95)), Err(Refused::Full), "10 + 95 bytes is over 100");
        q.push(frame(90)).unwrap();
        // one frame larger than the byte bound still goes through an empty queue
        let q = OutQueue::new(3, 100);
        q.push(frame(500)).unwrap();
    }

    #[tokio::test]
    async fn a_reply_waits_for_room_and_close_wakes_everyone() {
        let q = std::sync::Arc::new(OutQueue::new(1, 100));
        q.push(frame(10)).unwrap();
        let q2 = q.clone();
        let waiting = tokio::spawn(async move { q2.push_wait(frame(10)).await });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "no room yet");
        assert_eq!(q.take(8).await.unwrap().len(), 1);
        assert!(waiting.await.unwrap(), "room was made");
        assert_eq!(q.len(), (1, 10));
        let q3 = q.clone();
        let blocked = tokio::spawn(async move { q3.push_wait(frame(10)).await });
        q.close();
        assert!(!blocked.await.unwrap());
        assert_eq!(q.take(8).await, None);
        assert_eq!(q.push(frame(1)), Err(Refused::Closed));
    }

    #[tokio::test]
    async fn an_emptied_queue_gives_its_memory_back() {
        let q = OutQueue::new(1000, 1 << 20);
        for _ in 0..200 {
            q.push(frame(1)).unwrap();
        }
        while q.len().0 > 0 {
            q.take(64).await.unwrap();
        }
        assert_eq!(q.state.lock().frames.capacity(), 0);
    }
}
