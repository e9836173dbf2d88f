//! The wagate engine: everything the gateway does, with no HTTP in it. Meta's webhooks in
//! (journalled, then processed into messages, statuses and events), sending (checked, queued,
//! sent within Meta's limits), hooks (fan-out, delivery, replay), media, accounts and their
//! health, "Connect WhatsApp", authentication, audit and retention. Its doors — the HTTP API and
//! Graph front door (`wagate-http`), the command line, the console — call its operations.
//!
//! Each capability is one folder holding its operations, its worker and its rules; they share
//! the [`state::Engine`] and talk across slices through its small ports (`emit`, `hooks_changed`,
//! `accounts_changed`). The engine holds no SQL: it speaks to the store through
//! [`wagate_store::Store`].
#![forbid(unsafe_code)]

pub mod accounts;
pub mod activity;
pub mod audit;
pub mod auth;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod contacts;
pub mod error;
pub mod events;
pub mod frontdoor;
pub mod hooks;
pub mod inbound;
pub mod media;
pub mod readiness;
pub mod retention;
pub mod secrets;
pub mod sending;
pub mod start;
pub mod state;
pub mod usage;

pub use clock::now_ms;
pub use config::Config;
pub use error::{EngineError, EngineResult, Kind};
pub use secrets::{key_file, master_keys, master_keys_with, write_private};
pub use start::{KeyPolicy, Opened, StartError, Workers};
pub use state::Engine;
