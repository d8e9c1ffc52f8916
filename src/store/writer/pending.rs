//! Acknowledge now, count soon: the daemon's writer journals each request
//! (durable, so it can be acknowledged) and folds the counts of many
//! requests into the store at once.
//!
//! `cargo bench --bench ingest` measures what this buys: with 10,000 active
//! senders a group of concurrent requests touches nearly one counter key per
//! event, while a fold of half a second's traffic touches each key once.
//! Readers that must see every acknowledged event (the API, the dashboard)
//! ask the writer to fold first (`Ingester::sync`).

use super::fold::{Progress, Record};
use crate::event::Event;
use crate::store::ids::IdSet;
use crate::store::journal::{Entry, Extra, Journal};
use crate::store::{StoreError, Writer, keys};
use chrono::{DateTime, Utc};
use std::time::{Duration, Instant};

/// Most admitted events held before a fold: bounds the memory they take
/// (about 200 bytes each); the fold's sled batches are bounded apart.
const FOLD_EVENTS: usize = 100_000;
/// Acknowledged events that may wait while folds keep failing; beyond,
/// requests are refused with an error naming the backlog rather than held
/// in memory without bound.
#[cfg(not(test))]
const MAX_PENDING: usize = 10 * FOLD_EVENTS;
#[cfg(test)]
const MAX_PENDING: usize = 5_000;
/// Longest an acknowledged event waits before the counts include it.
const FOLD_AFTER: Duration = Duration::from_millis(500);

/// Admitted, journaled, not yet folded.
#[derive(Default)]
pub(super) struct Pending {
    /// One per acknowledged request, in journal order.
    records: Vec<Entry>,
    /// Idempotency keys of `records`, so that a repeat is a duplicate
    /// before the fold stores them.
    pub(super) ids: IdSet,
    /// The policy service's submissions among them (see `replicas`).
    pub(super) marks: std::collections::HashMap<String, u64>,
    count: usize,
    since: Option<Instant>,
}

impl Pending {
    /// The records from number `from` on.
    fn records(&self, from: usize) -> Vec<Record<'_>> {
        self.records[from.min(self.records.len())..]
            .iter()
            .map(Entry::record)
            .collect()
    }
}

impl Writer {
    /// The writer `[detect]` asks for, with the journal attached and what
    /// it held counted (see [`Writer::recover`]).
    pub fn open(
        store: crate::store::Store,
        cfg: &crate::detect::DetectConfig,
    ) -> Result<Writer, StoreError> {
        let mut writer = Writer::for_config(store, cfg)?;
        writer.recover()?;
        Ok(writer)
    }

    /// Attaches the ingest journal, first counting what an earlier run
    /// acknowledged but did not fold (after a crash). Returns the number of
    /// events recovered.
    pub(crate) fn recover(&mut self) -> Result<usize, StoreError> {
        let folded = self.progress()?;
        let path = self.store.journal.clone();
        let err = |source| StoreError::Journal {
            path: path.clone(),
            source,
        };
        let (mut journal, entries) =
            Journal::open(&path, (folded.generation, folded.records)).map_err(err)?;
        let recovered = entries.iter().map(|e| e.events.len()).sum();
        if !entries.is_empty() {
            let generation = journal.generation();
            let records: Vec<Record> = entries.iter().map(Entry::record).collect();
            let progress = self.progress_of(generation)?;
            self.fold(&records, Some(progress), Utc::now())?;
            self.store.flush()?;
            journal.restart(generation + 1).map_err(err)?;
            tracing::info!(
                events = recovered,
                "counted the events acknowledged before the last stop"
            );
        }
        self.journal = Some(journal);
        Ok(recovered)
    }

    /// Admits each request (events, extra key/values) and makes the
    /// admitted part durable: in the journal when there is one (counted at
    /// the next fold), else counted and flushed at once.
    pub fn submit(
        &mut self,
        requests: Vec<(Vec<Event>, Extra)>,
        now: DateTime<Utc>,
    ) -> Result<Vec<crate::store::IngestOutcome>, StoreError> {
        if self.pending.count >= MAX_PENDING {
            return Err(StoreError::Behind(self.pending.count));
        }
        self.store.ensure_space()?;
        let mut ids = IdSet::default();
        let mut outcomes = Vec::with_capacity(requests.len());
        let mut admitted = Vec::with_capacity(requests.len());
        for (events, extra) in requests {
            let (outcome, keep) = self.admit(&events, &mut ids, now)?;
            outcomes.push(outcome);
            let events: Vec<Event> = events
                .into_iter()
                .zip(keep)
                .filter_map(|(e, k)| k.map(|_| e))
                .collect();
            admitted.push(Entry { events, extra });
        }
        let Some(journal) = &mut self.journal else {
            let records: Vec<Record> = admitted.iter().map(Entry::record).collect();
            self.fold(&records, None, now)?;
            self.store.flush()?;
            return Ok(outcomes);
        };
        journal
            .append(&admitted)
            .map_err(|source| StoreError::Journal {
                path: journal.path().to_path_buf(),
                source,
            })?;
        let p = &mut self.pending;
        p.ids.extend(ids);
        p.since.get_or_insert_with(Instant::now);
        p.count += admitted.iter().map(|e| e.events.len()).sum::<usize>();
        p.records.extend(admitted);
        Ok(outcomes)
    }

    /// Whether the pending events should be folded now.
    pub(crate) fn fold_due(&self) -> bool {
        self.pending.count >= FOLD_EVENTS || self.fold_in() == Some(Duration::ZERO)
    }

    /// How long until pending events must be folded (None: nothing pending).
    pub(crate) fn fold_in(&self) -> Option<Duration> {
        self.pending
            .since
            .map(|t| FOLD_AFTER.saturating_sub(t.elapsed()))
    }

    /// Counts every pending event in the store, durably, and empties the
    /// journal. On failure what is not counted stays pending (and journaled).
    pub(crate) fn fold_pending(&mut self, now: DateTime<Utc>) -> Result<(), StoreError> {
        let Some(generation) = self.journal.as_ref().map(Journal::generation) else {
            return Ok(());
        };
        if self.pending.since.is_none() {
            return Ok(());
        }
        if let Err(e) = self.store.ensure_space() {
            // They stay pending (and journaled); the next try comes after
            // FOLD_AFTER, so a full disk is looked at twice a second.
            self.pending.since = Some(Instant::now());
            return Err(e);
        }
        // A fold that failed halfway wrote its first batches: the store
        // says how far it got.
        let progress = self.progress_of(generation)?;
        let pending = std::mem::take(&mut self.pending);
        let records = pending.records(progress.records as usize);
        let folded = self
            .fold(&records, Some(progress), now)
            .and_then(|()| self.store.flush());
        drop(records);
        if let Err(e) = folded {
            self.pending = Pending {
                // Not at once again: the next try comes after FOLD_AFTER.
                since: Some(Instant::now()),
                ..pending
            };
            return Err(e);
        }
        self.publish(pending.marks);
        if let Some(journal) = &mut self.journal {
            // The store now says all of `generation` is counted: if starting
            // the next one fails, the journal refuses appends until it works.
            journal
                .restart(generation + 1)
                .map_err(|source| StoreError::Journal {
                    path: journal.path().to_path_buf(),
                    source,
                })?;
        }
        Ok(())
    }

    /// Where folding journal `generation` starts: after what the store
    /// says is counted of it already (records, and parts of the next
    /// group), or at its beginning.
    fn progress_of(&self, generation: u64) -> Result<Progress, StoreError> {
        let folded = self.progress()?;
        Ok(match folded.generation == generation {
            true => folded,
            false => Progress {
                generation,
                records: 0,
                parts: 0,
            },
        })
    }

    /// How far folding the journal got, as the store says.
    fn progress(&self) -> Result<Progress, StoreError> {
        Ok(self
            .store
            .data
            .get([keys::JOURNAL])?
            .and_then(|v| keys::split_journal_progress(&v))
            .unwrap_or_default())
    }
}
