//! tandem: an authoritative DNS server that runs as a primary (leader) or a
//! secondary (follower). See ARCHITECTURE.md for the map.

pub mod catalog;
pub mod catz;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod fsutil;
pub mod lifecycles;
pub mod ops;
pub mod primary;
pub mod query;
pub mod ratelog;
pub mod runtime_zones;
pub mod secondary;
pub mod server;
pub mod stats;
pub mod status;
pub mod supervise;
pub mod tls;
pub mod xfr;
pub mod zone;
