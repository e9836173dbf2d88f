//! Sending: a send is checked ([`prepare`]: the account, the recipient, Meta's rules, the
//! template catalog, the 24-hour window), queued ([`queue`]: once per idempotency key, or as a
//! batch), and sent by the [`worker`] within Meta's limits ([`throttle`]).

pub mod catalog;
pub mod messages;
pub mod prepare;
pub mod queue;
pub mod templates;
pub mod throttle;
pub mod views;
pub mod waiters;
pub mod worker;
