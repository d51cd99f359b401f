//! tandem: an authoritative DNS server that runs as a primary (leader) or a
//! secondary (follower). See ARCHITECTURE.md for the map.

pub mod acl;
pub mod answer;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod control;
pub mod control_client;
pub mod daemon;
pub mod fsutil;
pub mod journal;
pub mod memory;
pub mod primary;
pub mod ratelog;
pub mod secondary;
pub mod server;
pub mod stats;
pub mod status;
pub mod supervise;
pub mod transfer;
pub mod tsig;
pub mod wire;
pub mod zone;
