//! Inbound media: downloaded right after the webhook is processed — Meta's URL expires within
//! minutes and needs the token — checked against Meta's SHA-256, and kept in a directory under
//! the hex SHA-256 of the bytes. Failures are retried with backoff; the message and its event
//! never wait for the download. The stored files are read through [`files`].

pub mod blobs;
pub mod files;
pub mod worker;
