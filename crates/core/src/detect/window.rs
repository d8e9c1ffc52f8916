//! A sliding 60-minute count: the "running hour" a spike is judged on, so
//! that a run starting at 10:50 is not split in two halves that each look
//! small.

/// Messages per minute of the last hour, as a ring. A minute holds at
/// most 65,535 messages (more than a thousand a second from one account;
/// the excess is not counted): two bytes a minute instead of four keep the
/// windows of the thousands of accounts active at once (an import holds
/// 20,000) a third smaller.
#[derive(Debug, Clone)]
pub(crate) struct Window {
    buckets: [u16; 60],
    /// Latest minute (Unix minutes) seen.
    last: i64,
    total: u32,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            buckets: [0; 60],
            last: 0,
            total: 0,
        }
    }
}

impl Window {
    /// Messages of the last `minutes` minutes up to the latest one seen.
    pub(super) fn recent(&self, minutes: i64) -> u32 {
        (0..minutes.min(60))
            .map(|k| u32::from(self.buckets[(self.last - k).rem_euclid(60) as usize]))
            .sum()
    }

    /// Adds `n` messages at `minute`; returns the count of the 60 minutes
    /// ending at the latest minute seen. Messages older than that are
    /// dropped (they still count in the hourly history).
    pub(super) fn add(&mut self, minute: i64, n: u32) -> u32 {
        if minute >= self.last + 60 {
            // Everything has left the window (the usual case for a quiet
            // account): clear at once.
            self.buckets = [0; 60];
            self.total = 0;
            self.last = minute;
        } else if minute > self.last {
            // Clear the minutes between the last one seen and this one;
            // the slot index wraps without a division per step.
            let mut slot = (self.last + 1).rem_euclid(60) as usize;
            for _ in 0..minute - self.last {
                self.total -= u32::from(self.buckets[slot]);
                self.buckets[slot] = 0;
                slot = if slot == 59 { 0 } else { slot + 1 };
            }
            self.last = minute;
        } else if minute <= self.last - 60 {
            return self.total;
        }
        let slot = minute.rem_euclid(60) as usize;
        let n = u16::try_from(n)
            .unwrap_or(u16::MAX)
            .min(u16::MAX - self.buckets[slot]);
        self.buckets[slot] += n;
        self.total += u32::from(n);
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_last_sixty_minutes() {
        let mut w = Window::default();
        assert_eq!(w.add(1000, 1), 1);
        assert_eq!(w.add(1030, 2), 3);
        assert_eq!(w.add(1059, 1), 4);
        // Minute 1000 leaves the window at 1060.
        assert_eq!(w.add(1060, 1), 4);
        // A late message inside the window counts; one outside does not.
        assert_eq!(w.add(1050, 1), 5);
        assert_eq!(w.add(1000, 1), 5);
        // After a long pause everything has left.
        assert_eq!(w.add(5000, 1), 1);
    }

    #[test]
    fn counts_the_last_minutes_up_to_the_latest() {
        let mut w = Window::default();
        w.add(1000, 3);
        w.add(1010, 2);
        w.add(1014, 1);
        assert_eq!(w.recent(15), 6);
        assert_eq!(w.recent(5), 3);
        assert_eq!(w.recent(1), 1);
        w.add(1020, 0);
        assert_eq!(w.recent(15), 3, "minute 1000 left the quarter");
        assert_eq!(w.recent(600), 6, "never more than the hour");
    }

    #[test]
    fn a_full_minute_counts_no_more_and_leaves_whole() {
        let mut w = Window::default();
        assert_eq!(w.add(10, 70_000), 65_535);
        assert_eq!(w.add(10, 5), 65_535);
        assert_eq!(w.add(11, 5), 65_540);
        // The full minute leaves without leaving anything behind.
        assert_eq!(w.add(70, 1), 6);
        assert_eq!(w.add(71, 0), 1);
    }
}
