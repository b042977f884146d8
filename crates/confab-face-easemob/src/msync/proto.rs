//! The generated msync types (package `easemob.pb`, `proto/msync.proto`): proto2, so every
//! singular field is an `Option` and an absent field stays absent on the wire (the SDK tests
//! field presence).
#![allow(clippy::all, missing_docs)]

include!(concat!(env!("OUT_DIR"), "/easemob.pb.rs"));
