//! Sockets: a UDP fast path (one SO_REUSEPORT socket and thread per worker,
//! batched with recvmmsg/sendmmsg) and TCP on tokio.

pub mod rrl;
pub mod tcp;
pub mod udp;
