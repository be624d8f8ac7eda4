//! sideloadd integration tests: the real binary against the fake Scrypted server.
//! One test binary (see Cargo.toml) so the suite links once.

mod check_config;
mod faults;
mod harness;
mod notify;
mod provision;
mod real_rpc;
mod rpc;
mod zips;
