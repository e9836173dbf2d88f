//! Meta's webhook: the verify handshake, signature check over the raw bytes, routing to an
//! account, and the journal. A body is acknowledged only after it is committed to the journal;
//! a single writer commits whatever has queued up in one transaction (group commit), which is
//! both durable and fast. A processor then turns journalled bodies into messages, statuses and
//! events; after a crash it picks up whatever was journalled and not processed. [`receive`] takes
//! a body in, [`journal`] is the writer's handle, [`process`] the writer and the processor, and
//! [`admin`] the operator's view of what was set aside or quarantined.

pub mod admin;
pub mod journal;
pub mod process;
pub mod receive;
