//! Idempotency keys, stored as per-day blocks of 64-bit hashes.
//!
//! One sled key per event id made ids the largest key space of the store
//! (an import of Postfix logs writes one per message) and cost a lookup and
//! an insert per event. Here a day's ids live in blocks of up to
//! [`BLOCK_IDS`] hashes under `i · day · block`, and the writer keeps the
//! sets of the days it recently checked in memory: checking an id is a hash
//! lookup, and storing a fold's ids rewrites the last block of its days.
//!
//! Ids are kept as long as the counts: an event is checked against every
//! id of its day, and an event older than the retention is refused anyway.
//!
//! The hash is the low 64 bits of XXH3-128 seeded with a random number
//! kept in the store, so ids cannot be crafted to collide. Two honest ids
//! of one day share a hash with a probability of about n²/2⁶⁵ for n ids
//! that day: with a million messages a day, once in 37 million days, and
//! then one message goes uncounted as a duplicate. (Schemas up to 7 kept
//! all 128 bits: twice the space of the store's largest key space for a
//! risk no site meets; their hashes keep their low half, so ids stored
//! before the upgrade are still recognised.)

use super::{Store, StoreError, keys};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasherDefault, Hasher};

/// Hashes per block. A block is rewritten whole when ids are added to it,
/// by every fold and by every part of an import's write-out (each part
/// adds the ids of its accounts to the last block of every day it holds),
/// so this bounds that write: 2 KiB. With blocks of 4,096 hashes (64 KiB
/// of the 16-byte hashes of the time) the id blocks were most of what an
/// import wrote: 100,000 accounts over 20 days, imported with 48 MiB of
/// events held, wrote 1,871 MiB for a store of 958 MiB; with these blocks
/// (and 8-byte hashes) 851 MiB for 339. A busy day of a million ids is
/// 4,000 keys, as many as its four thousand busiest accounts' daily keys.
pub(super) const BLOCK_IDS: usize = 256;
/// Bytes of one hash in a block.
const HASH_BYTES: usize = 8;

/// Days whose sets stay in memory (more while a bulk load holds ids
/// reserved on more days). Live traffic touches today (and yesterday
/// around midnight); an import moves through days in order, but a file
/// merged from several hosts' logs may interleave three days, and with two
/// kept every event of an already-imported file then reloaded a day's set
/// (a re-import of 30,000 events took minutes). A day of the import
/// benchmark's log is 110,000 ids, about 2 MiB of set: 4 days kept were 7
/// of the 100 MiB an import of weeks of log may use.
const DAYS_KEPT: usize = 3;

/// An id as the store knows it: its day and hash.
pub(super) type IdKey = (u32, u64);

/// The hashes are uniform already; hashing them again would be waste.
#[derive(Default)]
pub(super) struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
    fn write_u32(&mut self, n: u32) {
        self.0 ^= u64::from(n).rotate_left(32);
    }
}

pub(super) type IdSet = std::collections::HashSet<IdKey, BuildHasherDefault<Identity>>;

/// The stored ids of one day.
#[derive(Default)]
struct Day {
    stored: super::hashes::Hashes,
    /// The last block, kept so that adding to it needs no read.
    last: Last,
    used: u64,
    /// Ids in `stored` that are only reserved (see [`IdIndex::reserve`]):
    /// while there are any, the day stays in memory.
    reserved: usize,
}

/// A day's last block: its number and contents (None: no block yet).
type Last = Option<(u32, Vec<u8>)>;

/// The writer's view of the stored ids (see the module doc).
pub(super) struct IdIndex {
    seed: u64,
    days: HashMap<u32, Day>,
    clock: u64,
}

impl IdIndex {
    pub(super) fn new(seed: u64) -> IdIndex {
        IdIndex {
            seed,
            days: HashMap::new(),
            clock: 0,
        }
    }

    pub(super) fn key(&self, day: u32, id: &str) -> IdKey {
        (day, hash(self.seed, id))
    }

    /// Whether `id` is stored.
    pub(super) fn contains(&mut self, store: &Store, id: IdKey) -> Result<bool, StoreError> {
        Ok(self.day(store, id.0)?.stored.contains(id.1))
    }

    /// Adds to `batch` the blocks that store `ids` (those not stored yet)
    /// and counts them as stored: the caller applies the batch, or calls
    /// [`IdIndex::forget`] if that fails.
    pub(super) fn write(
        &mut self,
        store: &Store,
        batch: &mut sled::Batch,
        ids: &[IdKey],
    ) -> Result<(), StoreError> {
        let mut new = Vec::with_capacity(ids.len());
        for id in ids {
            if self.reserve(store, *id)? {
                new.push(*id);
            }
        }
        self.write_reserved(store, batch, &new)
    }

    /// Counts `id` as stored without writing it, if it is not stored yet
    /// (then true): a bulk load checks its ids this way and writes them
    /// later with [`IdIndex::write_reserved`]. Its day stays in memory
    /// until then.
    pub(super) fn reserve(&mut self, store: &Store, id: IdKey) -> Result<bool, StoreError> {
        let day = self.day(store, id.0)?;
        let new = day.stored.insert(id.1);
        day.reserved += usize::from(new);
        Ok(new)
    }

    /// Adds to `batch` the blocks that store `ids`, each reserved once
    /// (see [`IdIndex::reserve`]), appended to their days' last blocks.
    pub(super) fn write_reserved(
        &mut self,
        store: &Store,
        batch: &mut sled::Batch,
        ids: &[IdKey],
    ) -> Result<(), StoreError> {
        for (day, new) in by_day(ids) {
            let entry = self.day(store, day)?;
            entry.reserved = entry.reserved.saturating_sub(new.len());
            append(&mut entry.last, batch, day, new);
        }
        Ok(())
    }

    /// The last blocks of the days with reserved ids, lent to a write-out
    /// that stores those ids on a thread of its own (see [`Blocks`]): the
    /// days stay in memory meanwhile, and new ids are checked and reserved
    /// against them as before.
    pub(super) fn lend_reserved(&mut self) -> Blocks {
        let days = self.days.iter_mut().filter(|(_, d)| d.reserved > 0);
        Blocks {
            days: days.map(|(day, d)| (*day, (d.last.take(), 0))).collect(),
        }
    }

    /// Takes back what [`IdIndex::lend_reserved`] lent, with the ids
    /// written to it no longer reserved.
    pub(super) fn give_back(&mut self, blocks: Blocks) {
        for (day, (last, written)) in blocks.days {
            // A lent day has reserved ids, so it stayed in memory.
            if let Some(d) = self.days.get_mut(&day) {
                d.last = last;
                d.reserved = d.reserved.saturating_sub(written);
            }
        }
    }

    /// Drops what is held in memory after a failed write: the next check
    /// reads the store again.
    pub(super) fn forget(&mut self) {
        self.days.clear();
    }

    /// Drops the days before `oldest` (purged from the store).
    pub(super) fn forget_before(&mut self, oldest: u32) {
        self.days.retain(|d, _| *d >= oldest);
    }

    /// The set of `day`, read from the store on first use.
    fn day(&mut self, store: &Store, day: u32) -> Result<&mut Day, StoreError> {
        self.clock += 1;
        if !self.days.contains_key(&day)
            && self.days.len() >= DAYS_KEPT
            && let Some(lru) = self
                .days
                .iter()
                .filter(|(_, d)| d.reserved == 0)
                .min_by_key(|(_, d)| d.used)
                .map(|(k, _)| *k)
        {
            self.days.remove(&lru);
        }
        let entry = match self.days.entry(day) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(load(store, day)?),
        };
        entry.used = self.clock;
        Ok(entry)
    }
}

/// The last blocks of some days, lent to a write-out (see
/// [`IdIndex::lend_reserved`]), with the ids written to each since.
pub(super) struct Blocks {
    days: HashMap<u32, (Last, usize)>,
}

impl Blocks {
    /// Adds to `batch` the blocks that store `ids`, as
    /// [`IdIndex::write_reserved`] does. Their days were lent (they hold
    /// reserved ids); one that was not is read from `store`.
    pub(super) fn write(
        &mut self,
        store: &Store,
        batch: &mut sled::Batch,
        ids: &[IdKey],
    ) -> Result<(), StoreError> {
        for (day, new) in by_day(ids) {
            let (last, written) = match self.days.entry(day) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => e.insert((load(store, day)?.last, 0)),
            };
            *written += new.len();
            append(last, batch, day, new);
        }
        Ok(())
    }
}

/// `ids` grouped by day.
fn by_day(ids: &[IdKey]) -> HashMap<u32, Vec<u64>> {
    let mut by_day: HashMap<u32, Vec<u64>> = HashMap::new();
    for (day, h) in ids {
        by_day.entry(*day).or_default().push(*h);
    }
    by_day
}

/// Adds to `batch` the blocks that append `new` to `day`'s last block
/// (`last`: its number and contents, updated).
fn append(last: &mut Last, batch: &mut sled::Batch, day: u32, new: Vec<u64>) {
    let (mut number, mut block) = match last.take() {
        Some((n, full)) if full.len() >= BLOCK_IDS * HASH_BYTES => (n + 1, Vec::new()),
        last => last.unwrap_or_default(),
    };
    for h in new {
        if block.len() >= BLOCK_IDS * HASH_BYTES {
            batch.insert(&block_key(day, number)[..], std::mem::take(&mut block));
            number += 1;
        }
        block.extend_from_slice(&h.to_le_bytes());
    }
    batch.insert(&block_key(day, number)[..], block.as_slice());
    *last = Some((number, block));
}

fn load(store: &Store, day: u32) -> Result<Day, StoreError> {
    let mut d = Day::default();
    let mut stored = Vec::new();
    for item in store.data.scan_prefix(keys::day_bound(keys::ID, day)) {
        let (k, v) = item?;
        let Some(number) = k.get(5..9).and_then(|b| b.try_into().ok()) else {
            continue;
        };
        stored.extend(hashes(&v));
        d.last = Some((u32::from_be_bytes(number), v.to_vec()));
    }
    d.stored = super::hashes::Hashes::from_vec(stored);
    Ok(d)
}

/// The hashes of one block value.
fn hashes(block: &[u8]) -> impl Iterator<Item = u64> + '_ {
    block
        .chunks_exact(HASH_BYTES)
        .filter_map(|c| c.try_into().ok().map(u64::from_le_bytes))
}

/// Adds to `batch` the blocks of a day's `hashes`, numbered from 0 (the
/// store upgrades write whole days).
pub(super) fn write_day(batch: &mut sled::Batch, day: u32, hashes: &[u64]) {
    for (number, chunk) in (0u32..).zip(hashes.chunks(BLOCK_IDS)) {
        let block: Vec<u8> = chunk.iter().flat_map(|h| h.to_le_bytes()).collect();
        batch.insert(&block_key(day, number)[..], block);
    }
}

pub(super) fn hash(seed: u64, id: &str) -> u64 {
    short(xxhash_rust::xxh3::xxh3_128_with_seed(id.as_bytes(), seed))
}

/// The hash kept of a 128-bit hash of schemas up to 7 (see the module doc).
pub(super) fn short(h: u128) -> u64 {
    h as u64
}

pub(super) fn block_key(day: u32, number: u32) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[..5].copy_from_slice(&keys::day_bound(keys::ID, day));
    k[5..].copy_from_slice(&number.to_be_bytes());
    k
}

impl Store {
    /// Stored idempotency keys, for the tests that check what is kept.
    #[cfg(test)]
    pub(crate) fn count_ids(&self) -> usize {
        self.data
            .scan_prefix([keys::ID])
            .filter_map(Result::ok)
            .map(|(_, v)| v.len() / HASH_BYTES)
            .sum()
    }
}

#[cfg(test)]
pub(super) mod tests;
