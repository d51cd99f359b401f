//! tandem: an authoritative DNS server that runs as a primary (leader) or a
//! secondary (follower). See ARCHITECTURE.md for the map.

pub mod answer;
pub mod catalog;
pub mod config;
pub mod primary;
pub mod server;
pub mod wire;
pub mod zone;
