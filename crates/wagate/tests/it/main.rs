//! wagate's integration tests: the real gateway and the simulator on 127.0.0.1:0, a fresh
//! database per test (PostgreSQL when WAGATE_TEST_POSTGRES_URL is set, else SQLite).

mod accounts;
mod api;
mod backup;
mod bad_input;
mod binary;
mod conformance;
mod connect;
mod console;
mod console_browser;
mod console_manage;
mod crash;
mod frontdoor;
mod frontdoor_objects;
mod health;
mod helpers;
mod hooks;
mod inbound;
mod jwt;
mod media;
mod readme;
mod recovery;
mod scale;
mod secrets;
mod security;
mod sending;
mod simulator;
mod sinks;
mod slow_clients;
mod templates;
mod tenants;
mod usage;
