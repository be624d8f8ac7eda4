//! nixgen: generates a pinned Nix package for every Scrypted plugin on the
//! npm registry (see `nixgen update --help` and README.md).

pub mod cell;
pub mod changes;
pub mod classify;
pub mod config;
pub mod dns;
pub mod escape;
pub mod failure;
pub mod hf;
pub mod keys;
pub mod lockfile;
pub mod markdown;
pub mod name;
pub mod needs;
pub mod python;
pub mod readme;
pub mod registry;
pub mod removed;
pub mod render;
pub mod report;
pub mod tree;
pub mod trust;
pub mod update;
pub mod verify;
