//! Checks that decide whether a registry version may be pinned at all:
//! release age ([`cooldown`]), registry signatures ([`signature`]), who
//! published it ([`publisher`]) and deprecation ([`deprecation`]). They are
//! pure; `update::trust` applies them to a run.

pub mod cooldown;
pub mod deprecation;
pub mod publisher;
pub mod signature;
pub mod summary;
