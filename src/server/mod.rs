//! Sockets: a UDP fast path (one SO_REUSEPORT socket and thread per worker,
//! batched with recvmmsg/sendmmsg), TCP on tokio, and the dispatch that
//! sends each request to the query path or the transfer side.

pub mod dispatch;
pub mod rrl;
pub mod tcp;
pub mod udp;
