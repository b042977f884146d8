//! Calls to an app's own code. The engine decides when (`confab_engine::hooks`); each face
//! decides how its vendor's hooks look; this crate makes the calls: one HTTP [`Caller`] with
//! deadlines, bounded answers, bounded calls in flight per app and counters; the [`Outbox`]
//! runner that makes the calls kept after the fact, with retries; and the push hand-off
//! ([`push`]), which is no vendor's.
#![forbid(unsafe_code)]

pub mod caller;
pub mod outbox;
pub mod push;

pub use caller::{Answer, CallError, Caller, CallerSettings, Request};
pub use outbox::{Delivery, Outbox, OutboxHandle, OutboxSettings, Sink};
