//! The integration tests of the confab binary, in one test binary (one link instead of one per file):
//! real HTTP and WebSockets on a real port, a real SQLite store in a temporary directory.

mod common;

mod auth_table;
mod cli;
mod cross_face;
mod early_answer;
mod em_bad_input;
mod em_callbacks;
mod em_chatrooms;
mod em_client_rest;
mod em_client_rest2;
mod em_group_requests;
mod em_group_roles;
mod em_limits;
mod em_messages;
mod em_msync;
mod em_msync_held;
mod em_push;
mod em_quotas;
mod em_reactions;
mod em_rooms;
mod em_sdk_social;
mod em_social;
mod em_threads;
mod em_users;
mod hooks_outbox;
mod interop;
mod lc_auth_limits;
mod lc_conversations;
mod lc_hooks;
mod lc_import;
mod lc_messages;
mod lc_service_clients;
mod leanengine_harness;
mod login_limits;
mod maxim;
mod maxim_webhook;
mod realtime;
mod rest_to_ws;
mod router_and_cors;
mod runtime_seams;
mod smoke;
