//! Accounts: the ones this gateway acts for, held in memory ([`runtime`]); making and changing
//! them ([`manage`]); pausing and resuming their sending ([`pause`]); their health, the doctor's
//! checks ([`health`]); and "Connect WhatsApp" ([`connect`]).

pub mod connect;
pub mod health;
pub mod manage;
pub mod ops;
pub mod pause;
pub mod runtime;
