//! nixgen (placeholder until its issue lands).
