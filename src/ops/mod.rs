//! What operators use: the control API, the CLI's client for it, the
//! /metrics text.

pub mod client;
pub mod control;
pub mod metrics;
