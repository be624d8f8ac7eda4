//! nixgen: generates a pinned Nix package for every Scrypted plugin on the
//! npm registry (see `nixgen update --help` and README.md).

pub mod classify;
pub mod config;
pub mod escape;
pub mod lockfile;
pub mod markdown;
pub mod name;
pub mod needs;
pub mod readme;
pub mod registry;
pub mod removed;
pub mod render;
pub mod report;
pub mod tree;
pub mod update;
pub mod verify;
