//! EXPIRE: no refresh succeeded within the SOA's EXPIRE (RFC 1035 §3.3.13),
//! so the copy is no longer trusted: answer SERVFAIL until a transfer
//! succeeds. The saved copy stays on disk, marked expired by its timers.

use super::SecondaryZone;
use crate::status::State;
use tracing::warn;

impl SecondaryZone {
    pub(super) fn expire(&mut self) {
        warn!(zone = %self.cfg.name, "EXPIRE passed without a successful refresh; answering SERVFAIL until a transfer succeeds");
        self.current = None;
        self.set_expire_at(None);
        self.status.set_state(State::Expired);
        self.status
            .set_error(Some("expired: no successful refresh within EXPIRE".into()));
        self.publish();
    }
}
