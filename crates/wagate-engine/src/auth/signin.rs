//! Signing in to the console with an API key, and the caller a session stands for.

use super::authenticate::from_key_hash;
use super::sessions::{Session, FAILURE_WINDOW_MS};
use super::Caller;
use crate::error::{EngineError, EngineResult, Kind};
use crate::state::Engine;

/// Signs in with an API key from `address`: a new session (its id and the session) and the
/// caller it stands for. After too many failures from one address it is refused for a while,
/// good key or not.
pub async fn sign_in(state: &Engine, api_key: &str, address: &str) -> EngineResult<(String, Session, Caller)> {
    if state.sessions.too_many_failures(address) {
        return Err(EngineError::new(
            Kind::TooManyRequests,
            "too_many_sign_ins",
            "too many failed sign-ins from this address",
        )
        .hint(format!(
            "wait {} minutes, then sign in with a valid API key",
            FAILURE_WINDOW_MS / 60_000
        )));
    }
    let key_hash = wagate_core::signature::sha256_hex(api_key.trim().as_bytes());
    match from_key_hash(state, &key_hash).await {
        Ok(caller) => {
            state.sessions.succeeded(address);
            let (id, session) = state.sessions.start(key_hash, state.config.console.session_hours);
            Ok((id, session, caller))
        }
        Err(e) => {
            if e.kind == Kind::Unauthenticated {
                state.sessions.failed(address);
            }
            Err(e)
        }
    }
}

/// The caller a session stands for, while the session lasts and its key still works.
pub async fn session_caller(state: &Engine, session_id: &str) -> EngineResult<(Caller, Session)> {
    let session = state
        .sessions
        .get(session_id)
        .ok_or_else(|| EngineError::unauthorized("the console session has ended; sign in again"))?;
    let caller = from_key_hash(state, &session.key_hash).await?;
    Ok((caller, session))
}

/// Signs out.
pub fn sign_out(state: &Engine, session_id: &str) {
    state.sessions.end(session_id);
}
