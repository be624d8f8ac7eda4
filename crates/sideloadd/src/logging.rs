//! Logging rules that hold whatever `RUST_LOG` asks for.
//!
//! The WebSocket library traces the raw handshake request (with the
//! `Authorization: Bearer` header) and every frame (with the admin password sent
//! to `users.addUser`). No level may print a secret, so its traces are kept off:
//! its debug lines and above carry none.

use tracing::Level;
use tracing_subscriber::filter::{FilterFn, filter_fn};

/// Targets whose trace level prints secrets sideloadd sends.
const SECRET_CARRIERS: [&str; 2] = ["tungstenite", "tokio_tungstenite"];

/// A filter to add to every subscriber: drops trace events of [`SECRET_CARRIERS`].
pub fn no_secret_traces() -> FilterFn {
    filter_fn(|meta| {
        let carrier = SECRET_CARRIERS
            .iter()
            .any(|t| meta.target() == *t || meta.target().starts_with(&format!("{t}::")));
        !(carrier && *meta.level() == Level::TRACE)
    })
}
