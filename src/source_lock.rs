//! One change of a source's whole contents at a time, per process.
//!
//! A `/sync` reads what a source holds, then adds and removes until it holds the collection.
//! Two at once of one source each remove only what they saw, so the source ends with both
//! collections. [`SourceLocks`] lets one run per source and refuses the other at once (409
//! with `Retry-After`) rather than queueing it: the caller's scheduler retries. Anything else
//! that replaces a source's contents takes the same lock.
//!
//! The lock is per process: keep each source's syncs on one replica (one scheduled job per
//! source), as the README explains.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

/// The sources being synced in this process.
#[derive(Debug, Clone, Default)]
pub struct SourceLocks {
    held: Arc<Mutex<HashSet<String>>>,
}

/// A source held until this is dropped.
#[derive(Debug)]
pub struct SourceGuard {
    held: Arc<Mutex<HashSet<String>>>,
    source: String,
}

impl SourceLocks {
    /// Holds `source`, or `None` when it is already held.
    pub fn try_lock(&self, source: &str) -> Option<SourceGuard> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.insert(source.to_owned()).then(|| SourceGuard {
            held: self.held.clone(),
            source: source.to_owned(),
        })
    }
}

impl Drop for SourceGuard {
    fn drop(&mut self) {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.source);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_source_is_refused_until_its_guard_is_dropped() {
        let locks = SourceLocks::default();
        let guard = locks.try_lock("ThreatQ").expect("free");
        assert!(locks.try_lock("ThreatQ").is_none());
        assert!(locks.try_lock("Other").is_some(), "other sources are free");
        drop(guard);
        assert!(locks.try_lock("ThreatQ").is_some());
    }
}
