//! Why a transfer in (or its SOA check) failed, as logs, `status` and the
//! control API say it.

#[derive(Debug, thiserror::Error)]
pub enum XfrError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("timed out")]
    Timeout,
    #[error("answered {}{}", crate::query::request::rcode::name(*.0), .1.as_deref().map(|t| format!(" (TSIG {t})")).unwrap_or_default())]
    Rcode(u16, Option<String>),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("TSIG: {0}")]
    Tsig(String),
    #[error("malformed: {0}")]
    Malformed(String),
    #[error("transfer larger than the limit ({0})")]
    TooLarge(String),
}
