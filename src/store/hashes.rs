//! A compact set of 64-bit hashes: the writer's in-memory copy of a day's
//! stored idempotency keys.
//!
//! A `HashSet<u64>` costs 10–18 bytes per hash depending on where it is in
//! its growth; with millions of ids a day those sets were most of the
//! daemon's memory under sustained ingest. Here the hashes live in a sorted
//! vector (8 bytes each) with an index by their top bits — the hashes are
//! uniform, so each slot of the index covers a handful of them and a lookup
//! touches a cache line or two — plus a small hash set of recent additions,
//! merged into the vector when it reaches an eighth of its size.

use super::ids::Identity;
use std::collections::HashSet;
use std::hash::BuildHasherDefault;

/// Target hashes per index slot.
const PER_SLOT: usize = 8;
/// Recent additions kept before a merge, at least.
const MIN_RECENT: usize = 4_096;

#[derive(Default)]
pub(super) struct Hashes {
    sorted: Vec<u64>,
    /// `index[s]..index[s + 1]`: the range of `sorted` whose top `bits`
    /// bits equal `s`.
    index: Vec<u32>,
    bits: u32,
    recent: HashSet<u64, BuildHasherDefault<Identity>>,
}

impl Hashes {
    /// The set of `hashes` (in any order, repeats allowed).
    pub(super) fn from_vec(mut hashes: Vec<u64>) -> Hashes {
        hashes.sort_unstable();
        hashes.dedup();
        let mut set = Hashes {
            sorted: hashes,
            ..Hashes::default()
        };
        set.reindex();
        set
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.sorted.len() + self.recent.len()
    }

    pub(super) fn contains(&self, h: u64) -> bool {
        self.recent.contains(&h) || self.sorted_range(h).contains(&h)
    }

    /// Adds `h`; false if it was there already.
    pub(super) fn insert(&mut self, h: u64) -> bool {
        if self.sorted_range(h).contains(&h) || !self.recent.insert(h) {
            return false;
        }
        if self.recent.len() >= MIN_RECENT.max(self.sorted.len() / 8) {
            self.merge();
        }
        true
    }

    /// The part of `sorted` where `h` would be.
    fn sorted_range(&self, h: u64) -> &[u64] {
        if self.index.is_empty() {
            return &[];
        }
        let slot = top_bits(h, self.bits);
        let (lo, hi) = (self.index[slot] as usize, self.index[slot + 1] as usize);
        &self.sorted[lo..hi]
    }

    /// Moves the recent additions into the sorted vector, in place: merged
    /// from the back into the room reserved after it.
    fn merge(&mut self) {
        let mut recent: Vec<u64> = self.recent.drain().collect();
        recent.sort_unstable();
        let old = self.sorted.len();
        self.sorted.reserve_exact(recent.len());
        self.sorted.resize(old + recent.len(), 0);
        let (mut i, mut j) = (old, recent.len());
        for k in (0..self.sorted.len()).rev() {
            if j == 0 {
                break;
            }
            if i > 0 && self.sorted[i - 1] > recent[j - 1] {
                self.sorted[k] = self.sorted[i - 1];
                i -= 1;
            } else {
                self.sorted[k] = recent[j - 1];
                j -= 1;
            }
        }
        self.recent.shrink_to(MIN_RECENT);
        self.reindex();
    }

    fn reindex(&mut self) {
        let n = self.sorted.len();
        self.bits = (n / PER_SLOT).max(1).ilog2();
        let slots = 1usize << self.bits;
        self.index.clear();
        self.index.reserve_exact(slots + 1);
        let mut at = 0;
        for slot in 0..slots {
            self.index.push(at as u32);
            while at < n && top_bits(self.sorted[at], self.bits) == slot {
                at += 1;
            }
        }
        self.index.push(n as u32);
    }
}

/// The top `bits` bits of `h`.
fn top_bits(h: u64, bits: u32) -> usize {
    h.checked_shr(64 - bits).unwrap_or(0) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Uniform-looking hashes from a counter.
    fn h(i: u64) -> u64 {
        xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes())
    }

    #[test]
    fn holds_exactly_what_was_inserted_across_merges() {
        let mut set = Hashes::from_vec((0..1_000).map(h).chain((0..10).map(h)).collect());
        assert_eq!(set.len(), 1_000);
        // Enough to merge several times; every second one is new.
        for i in 500..60_000 {
            assert_eq!(set.insert(h(i)), i >= 1_000, "insert {i}");
        }
        assert_eq!(set.len(), 60_000);
        assert!(set.sorted.len() > 50_000, "merged into the vector");
        assert!(set.sorted.windows(2).all(|w| w[0] < w[1]));
        assert!((0..60_000).all(|i| set.contains(h(i))));
        assert!(!(60_000..70_000).any(|i| set.contains(h(i))));
        // Extreme values land in the first and last slots.
        for x in [0, u64::MAX] {
            assert!(!set.contains(x));
            assert!(set.insert(x));
            set.merge();
            assert!(set.contains(x) && !set.insert(x));
        }
    }

    #[test]
    fn empty_and_tiny_sets() {
        let mut set = Hashes::default();
        assert!(!set.contains(h(1)));
        assert!(set.insert(h(1)) && !set.insert(h(1)));
        set.merge();
        assert_eq!(set.sorted, vec![h(1)]);
        assert!(set.contains(h(1)) && !set.contains(h(2)));
    }
}
