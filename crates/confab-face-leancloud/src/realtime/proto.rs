//! The generated protocol types (package `push_server.messages2`).
#![allow(clippy::all, missing_docs)]

include!(concat!(env!("OUT_DIR"), "/push_server.messages2.rs"));
