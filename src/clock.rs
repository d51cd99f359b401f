//! Wall-clock time in Unix seconds: TSIG signing times, persisted timers,
//! serial policies, log rate windows.

pub fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
