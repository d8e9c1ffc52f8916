//! The events a [`Bulk`](super::Bulk) holds, one small record each, and
//! how an account's records become its counts at a write-out.

use crate::event::{Event, Outcome};
use crate::store::ids::IdKey;

/// One admitted event, as held until the write-out: 16 bytes, whatever
/// the account. (Lists of counts per account, day and hour held about 80
/// bytes per event on the import benchmark's log, most of it in the
/// lists' own overhead, and so wrote out three times as often as this.
/// At 20 bytes, with a floor of events per account that held about a
/// million of them for 30,000 accounts, a 4 GB log's import peaked above
/// 100 MB.)
#[derive(Clone, Copy)]
pub(super) struct Held {
    /// The id's hash as two words (a `u64` would align the record to 8).
    id: [u32; 2],
    /// The account's number in this bulk (its rank by name once sorted)
    /// in the top 24 bits; below, the day's shift (see [`SHIFT_AT`]) and
    /// the TLS class index or [`FAILED`], with the [`HAS_ID`] and
    /// [`HOURLY`] bits.
    tag: u32,
    /// Unix hour.
    pub hour: u32,
}

/// Accounts a bulk may number: its write-out is due at this many.
pub(super) const MAX_ACCOUNTS: usize = 1 << 24;

impl Held {
    /// `ev` of account number `account`, at `hour` and local `day`, with
    /// its id's hash; `hourly`: its hour is recent enough to be counted.
    pub(super) fn new(
        ev: &Event,
        account: u32,
        hour: u32,
        day: u32,
        id: Option<u64>,
        hourly: bool,
    ) -> Held {
        let mut what = match ev.result {
            Outcome::Accepted => ev.tls.index() as u8,
            Outcome::AuthFailed => FAILED,
        };
        if hourly {
            what |= HOURLY;
        }
        if id.is_some() {
            what |= HAS_ID;
        }
        // The local day is the UTC day's neighbour at most (offsets are
        // within ±24 hours).
        let shift = (i64::from(day) - i64::from(hour / 24)).clamp(-1, 1);
        what |= ((shift + 1) as u8) << SHIFT_AT;
        debug_assert!((account as usize) < MAX_ACCOUNTS);
        Held {
            id: words(id.unwrap_or(0)),
            tag: account << 8 | u32::from(what),
            hour,
        }
    }

    pub(super) fn day(&self) -> u32 {
        let shift = i32::from(self.what() >> SHIFT_AT) - 1;
        (self.hour / 24).saturating_add_signed(shift)
    }

    pub(super) fn account(&self) -> u32 {
        self.tag >> 8
    }

    /// Gives the event the account number `account`.
    pub(super) fn renumber(&mut self, account: u32) {
        self.tag = account << 8 | u32::from(self.what());
    }

    /// The order of a write-out: by account, then time.
    pub(super) fn order(&self) -> (u32, u32, u8) {
        (self.account(), self.hour, self.what() >> SHIFT_AT)
    }

    fn what(&self) -> u8 {
        self.tag as u8
    }
}

const FAILED: u8 = 7;
const CLASS: u8 = 7;
const HAS_ID: u8 = 8;
/// The event's hour is recent enough to be counted hourly.
const HOURLY: u8 = 16;
/// Where the local day's shift from the UTC day of the hour (-1, 0 or 1,
/// stored plus one) sits in the low byte.
const SHIFT_AT: u8 = 5;

/// An id hash as two words, and back.
fn words(h: u64) -> [u32; 2] {
    [h as u32, (h >> 32) as u32]
}

fn hash(w: [u32; 2]) -> u64 {
    u64::from(w[1]) << 32 | u64::from(w[0])
}

/// The entry for `at` in a list ascending by `at`, added if missing.
/// Events come in time order once sorted, so the search starts from the
/// end.
fn slot<T: Default>(list: &mut Vec<(u32, T)>, at: u32) -> &mut T {
    let pos = list.iter().rposition(|e| e.0 <= at);
    let i = match pos {
        Some(i) if list[i].0 == at => i,
        _ => {
            let i = pos.map_or(0, |i| i + 1);
            list.insert(i, (at, T::default()));
            i
        }
    };
    &mut list[i].1
}

/// One account's counts gathered from its held events at a write-out;
/// the lists are reused from one account to the next.
#[derive(Default)]
pub(super) struct Gathered {
    /// Per local day: messages by TLS class, and failed logins.
    pub days: Vec<(u32, ([u64; 5], u64))>,
    /// Per hour: messages and failed logins.
    pub hours: Vec<(u32, [u64; 2])>,
}

impl Gathered {
    /// Gathers one account's `held` events; their ids go to `ids`.
    pub(super) fn gather(&mut self, held: &[Held], ids: &mut Vec<IdKey>) {
        self.days.clear();
        self.hours.clear();
        for h in held {
            let what = h.what();
            let failed = what & CLASS == FAILED;
            let (counts, failures) = slot(&mut self.days, h.day());
            match failed {
                true => *failures += 1,
                false => counts[usize::from(what & CLASS)] += 1,
            }
            if what & HOURLY != 0 {
                slot(&mut self.hours, h.hour)[usize::from(failed)] += 1;
            }
            if what & HAS_ID != 0 {
                ids.push((h.day(), hash(h.id)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Tls;
    use chrono::{TimeZone, Utc};

    #[test]
    fn records_are_small_and_give_back_what_they_hold() {
        assert_eq!(std::mem::size_of::<Held>(), 16);
        let h = u64::MAX / 3 * 2 + 12_345;
        assert_eq!(hash(words(h)), h);
        let ts = Utc.with_ymd_and_hms(2026, 11, 27, 23, 30, 0).unwrap();
        let ev = Event::accepted(ts, "a@example.org", Tls::V1_1);
        let hour = crate::event::time::hour_number(ts);
        let utc_day = hour / 24;
        // A zone east of UTC is already on the next day, one west of it
        // still on this one, or the day before for an early UTC hour.
        let mut ids = Vec::new();
        let held: Vec<Held> = [utc_day + 1, utc_day, utc_day - 1]
            .iter()
            .map(|day| Held::new(&ev, 0, hour, *day, Some(h), true))
            .collect();
        for (got, day) in held.iter().zip([utc_day + 1, utc_day, utc_day - 1]) {
            assert_eq!(got.day(), day);
            // Renumbering (by rank at a write-out) keeps all but the number,
            // up to the largest number a bulk gives.
            let mut moved = *got;
            moved.renumber(MAX_ACCOUNTS as u32 - 1);
            assert_eq!(moved.account(), MAX_ACCOUNTS as u32 - 1);
            assert_eq!(
                (moved.day(), moved.hour, moved.what()),
                (day, hour, got.what())
            );
            assert_eq!(hash(moved.id), h);
        }
        let mut failed = Event::accepted(ts, "a@example.org", Tls::V1_2);
        failed.result = Outcome::AuthFailed;
        let old = Held::new(&failed, 0, hour, utc_day, None, false);
        let mut gathered = Gathered::default();
        gathered.gather(&[held[1], held[1], old], &mut ids);
        let mut counts = [0; 5];
        counts[Tls::V1_1.index()] = 2;
        assert_eq!(gathered.days, [(utc_day, (counts, 1))]);
        assert_eq!(
            gathered.hours,
            [(hour, [2, 0])],
            "the failure's hour is too old"
        );
        assert_eq!(ids, [(utc_day, h), (utc_day, h)]);
    }
}
