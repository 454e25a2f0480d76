//! In-memory fixed windows: a sharded map so concurrent requests rarely meet on one mutex.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

const SHARDS: usize = 16;
/// A shard drops expired windows once it holds this many entries.
const PRUNE_AT: usize = 4096;

type Key = (u8, u128);

pub(super) struct Windows {
    shards: Vec<Mutex<HashMap<Key, Window>>>,
}

#[derive(Clone, Copy)]
struct Window {
    /// Unix second at which this window ends.
    end: u64,
    count: u32,
}

impl Windows {
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// Adds one to the window ending at `end` and returns the new count.
    pub fn hit(&self, class: u8, bucket: u128, now: u64, end: u64) -> u32 {
        let folded = (bucket ^ (bucket >> 64)) as u64 ^ u64::from(class);
        let index = (folded.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60) as usize % SHARDS;
        // A panic while holding the lock cannot leave a count half-updated: keep going.
        let mut map = self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if map.len() >= PRUNE_AT {
            map.retain(|_, w| w.end > now);
        }
        let w = map
            .entry((class, bucket))
            .or_insert(Window { end, count: 0 });
        if w.end != end {
            *w = Window { end, count: 0 };
        }
        w.count = w.count.saturating_add(1);
        w.count
    }
}
