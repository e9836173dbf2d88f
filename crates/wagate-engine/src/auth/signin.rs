//! Signing in to the console with an API key, and the caller a session stands for.

use super::authenticate::from_key_hash;
use super::sessions::{id_hash, FAILURE_WINDOW_MS};
use super::Caller;
use crate::clock::now_ms;
use crate::error::{EngineError, EngineResult, Kind};
use crate::state::Engine;

/// A signed-in browser, as the database keeps it.
pub use wagate_store::ConsoleSession as Session;

/// Signs in with an API key from `address`: a new session (its id, for the cookie, and the
/// session) and the caller it stands for. After too many failures from one address it is
/// refused for a while, good key or not.
pub async fn sign_in(state: &Engine, api_key: &str, address: &str) -> EngineResult<(String, Session, Caller)> {
    if state.sign_in_failures.too_many_failures(address) {
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
            state.sign_in_failures.succeeded(address);
            let id = wagate_core::ids::secret("ws_", 24);
            let now = now_ms();
            let session = Session {
                id_hash: id_hash(&id),
                key_hash,
                csrf: wagate_core::ids::secret("csrf_", 16),
                created_at: now,
                expires_at: now + state.config.console.session_hours as i64 * 3_600_000,
            };
            state.store.create_session(&session).await?;
            Ok((id, session, caller))
        }
        Err(e) => {
            if e.kind == Kind::Unauthenticated {
                state.sign_in_failures.failed(address);
            }
            Err(e)
        }
    }
}

/// What a session signed in with: an API key (its hash), or the identity provider's token
/// (`jwt:` and the token, checked again at every page, so the session ends with it).
const JWT: &str = "jwt:";

/// Signs in with the identity provider's token (after [`super::oidc::finish`]): a new session
/// that lasts while the token does, and at most `console.session_hours`.
pub async fn sign_in_with_token(state: &Engine, token: &str) -> EngineResult<(String, Session)> {
    let id = wagate_core::ids::secret("ws_", 24);
    let now = now_ms();
    let session = Session {
        id_hash: id_hash(&id),
        key_hash: format!("{JWT}{token}"),
        csrf: wagate_core::ids::secret("csrf_", 16),
        created_at: now,
        expires_at: now + state.config.console.session_hours as i64 * 3_600_000,
    };
    state.store.create_session(&session).await?;
    Ok((id, session))
}

/// The caller a session stands for, while the session lasts and its key (or token) still works.
pub async fn session_caller(state: &Engine, session_id: &str) -> EngineResult<(Caller, Session)> {
    let session = state
        .store
        .get_session(&id_hash(session_id), now_ms())
        .await?
        .ok_or_else(|| EngineError::unauthorized("the console session has ended; sign in again"))?;
    let caller = match session.key_hash.strip_prefix(JWT) {
        Some(token) => super::authenticate::from_jwt(state, token).await?,
        None => from_key_hash(state, &session.key_hash).await?,
    };
    Ok((caller, session))
}

/// Signs out.
pub async fn sign_out(state: &Engine, session_id: &str) -> EngineResult<()> {
    Ok(state.store.delete_session(&id_hash(session_id)).await?)
}
