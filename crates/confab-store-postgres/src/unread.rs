//! Unread counts and summaries, bounded (the embedded store's `unread.rs`).
