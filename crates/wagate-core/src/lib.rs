//! wagate's domain, free of IO: typed ids, E.164 phone numbers, Meta payload types, webhook
//! parsing and normalisation, signatures, status ordering and the Meta error catalogue.
#![forbid(unsafe_code)]

pub mod graphjson;
pub mod hooks;
pub mod ids;
pub mod meta;
pub mod phone;
pub mod pricing;
pub mod retry;
pub mod seal;
pub mod signature;
pub mod status;
pub mod time;
pub mod validate;
pub mod webhook;
pub mod window;
