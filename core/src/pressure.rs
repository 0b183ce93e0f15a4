//! How busy this process' execution is: every run or dispatch in progress holds a slot of the
//! worker's `worker_concurrency`. When they are all taken, execution has more work than it can
//! do right now, and intake in the same process gives way (see `inbox::writer`): on two cores a
//! webhook flood would otherwise take the machine and leave the runs a sliver of it.

use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug, Default)]
pub struct Pressure {
    busy: AtomicUsize,
    /// Slots of the worker in this process; 0 without one (nothing to give way to).
    capacity: AtomicUsize,
}

/// One slot's work in progress; the slot is counted free again when this is dropped.
pub struct Busy<'a>(&'a Pressure);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Pressure {
    /// A worker with `slots` slots runs in this process.
    pub fn worker_started(&self, slots: usize) {
        self.capacity.store(slots, Ordering::Relaxed);
    }

    pub fn enter(&self) -> Busy<'_> {
        self.busy.fetch_add(1, Ordering::Relaxed);
        Busy(self)
    }

    /// Every slot of this process' worker is working.
    pub fn saturated(&self) -> bool {
        let capacity = self.capacity.load(Ordering::Relaxed);
        capacity > 0 && self.busy.load(Ordering::Relaxed) >= capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturated_only_with_every_slot_busy() {
        let p = Pressure::default();
        let _a = p.enter();
        assert!(!p.saturated(), "no worker here: nothing to give way to");
        p.worker_started(2);
        assert!(!p.saturated());
        let b = p.enter();
        assert!(p.saturated());
        drop(b);
        assert!(!p.saturated());
    }
}
