//! Primary zones: load from the zone file, publish, reload on demand.
//! A file that fails to load leaves the served version in place.

use crate::catalog::{Served, SharedCatalog};
use crate::config::ZoneConfig;
use crate::zone::{Zone, ZoneError, load_zone_file};
use std::sync::Arc;
use tracing::{error, info, info_span, warn};

/// Loads a primary zone's file; logs its warnings.
pub fn load(zc: &ZoneConfig) -> Result<Arc<Zone>, ZoneError> {
    let started = std::time::Instant::now();
    let loaded = load_zone_file(&zc.file, &zc.apex)?;
    for w in &loaded.warnings {
        warn!(zone = %zc.name, "{w}");
    }
    let z = loaded.zone;
    info!(
        zone = %zc.name,
        serial = z.serial(),
        records = z.record_count(),
        names = z.name_count(),
        ms = started.elapsed().as_millis() as u64,
        "zone loaded"
    );
    Ok(Arc::new(z))
}

/// Swaps a new version of one zone into the catalog (readers see either the
/// old or the new version, never a mix).
pub fn publish(catalog: &SharedCatalog, apex: &[u8], zone: Option<Arc<Zone>>) {
    catalog.rcu(|cat| {
        cat.with_zone(Served {
            apex: apex.into(),
            zone: zone.clone(),
        })
    });
}

/// (Re)loads a primary zone and publishes it; on failure the previous
/// version keeps serving and the error is logged as FILE:LINE: reason.
pub fn reload(catalog: &SharedCatalog, zc: &ZoneConfig) -> bool {
    let _span = info_span!("zone", name = %zc.name).entered();
    match load(zc) {
        Ok(z) => {
            publish(catalog, &zc.apex, Some(z));
            // The builder's scratch space was large; give it back to the OS.
            trim_heap();
            true
        }
        Err(e) => {
            error!(zone = %zc.name, "{e}; keeping the previous version");
            false
        }
    }
}

/// Returns freed heap memory to the kernel (glibc keeps it otherwise).
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases unused memory.
    unsafe {
        libc::malloc_trim(0);
    }
}
