//! Hooks: the user's services that receive events. A hook's URL is checked ([`url`], [`targets`]);
//! the configuration's hooks are saved at start ([`configured`]); events fan out to deliveries
//! ([`fanout`], by each hook's [`filters`]) and are delivered, retried and recorded
//! ([`delivery`]), over HTTP or to a broker ([`sinks`]); a hook's settings are checked in
//! [`manage`].

pub mod configured;
pub mod delivery;
pub mod fanout;
pub mod filters;
pub mod manage;
pub mod ops;
pub mod sinks;
pub mod targets;
pub mod url;
