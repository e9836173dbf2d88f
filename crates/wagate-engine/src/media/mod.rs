//! Inbound media: downloaded right after the webhook is processed — Meta's URL expires within
//! minutes and needs the token — checked against Meta's SHA-256, and kept in a directory under
//! the hex SHA-256 of the bytes. Failures are retried with backoff; the message and its event
//! never wait for the download. [`worker`] downloads, [`blobs`] keeps the bytes (a directory or
//! S3), and [`files`] reads them (with a key or a hook's signed link) and uploads files to Meta.

pub mod blobs;
pub mod files;
pub mod worker;
