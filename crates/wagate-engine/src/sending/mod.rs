//! Sending: a send is checked ([`prepare`]: the account, the recipient, Meta's rules, the
//! template catalog, the 24-hour window), queued ([`queue`]: once per idempotency key, or as a
//! batch), and sent by the [`worker`] within Meta's limits ([`throttle`]). A message's own
//! operations (send, read, cancel, retry, list, mark read) are in [`messages`], the template
//! catalog's in [`catalog`] (its rules in [`templates`]).

pub mod catalog;
pub mod messages;
pub mod prepare;
pub mod queue;
pub mod templates;
pub mod throttle;
pub mod views;
pub mod waiters;
pub mod worker;
