//! The state every handler is given: the engine.

/// The engine, as the routers hold it.
#[derive(Clone)]
pub struct AppState(pub wagate_engine::Engine);

impl std::ops::Deref for AppState {
    type Target = wagate_engine::Engine;
    fn deref(&self) -> &wagate_engine::Engine {
        &self.0
    }
}
