//! The journal writer's handle: hands bodies to the single group-commit writer
//! ([`super::process::run_journal_writer`]) and waits for their commit.

use tokio::sync::{mpsc, oneshot};
use wagate_store::NewJournalEntry;

use crate::error::{EngineError, Kind};

pub struct JournalRequest {
    pub(crate) entry: NewJournalEntry,
    pub(crate) done: oneshot::Sender<bool>,
}

/// Hands bodies to the single journal writer and waits for their commit.
#[derive(Clone)]
pub struct JournalWriter {
    tx: mpsc::Sender<JournalRequest>,
}

impl JournalWriter {
    pub fn channel() -> (Self, mpsc::Receiver<JournalRequest>) {
        let (tx, rx) = mpsc::channel(8192);
        (Self { tx }, rx)
    }

    /// Returns once the entry is committed; an error means it was not stored.
    pub async fn append(&self, entry: NewJournalEntry) -> Result<(), EngineError> {
        let (done, committed) = oneshot::channel();
        let unavailable = || {
            EngineError::new(
                Kind::Unavailable,
                "journal_unavailable",
                "the webhook could not be stored",
            )
            .hint("Meta retries; check the database")
        };
        self.tx
            .send(JournalRequest { entry, done })
            .await
            .map_err(|_| unavailable())?;
        match committed.await {
            Ok(true) => Ok(()),
            _ => Err(unavailable()),
        }
    }
}
