//! sideloadd integration tests: the real binary against the fake Scrypted server (and,
//! in `real_server`, against a real one when `SCRYPTED_SERVER` is set).
//! One test binary (see Cargo.toml) so the suite links once.

mod admin_password;
mod check_config;
mod core_endpoint;
mod faults;
mod harness;
mod journal;
mod messages;
mod notify;
mod ownership;
mod provision;
mod real_rpc;
mod real_server;
mod robustness;
mod rpc;
mod running;
mod zips;
