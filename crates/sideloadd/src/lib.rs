//! sideloadd (placeholder until its issue lands).
