//! A sliding 60-minute count: the "running hour" a spike is judged on, so
//! that a run starting at 10:50 is not split in two halves that each look
//! small.

/// Messages per minute of the last hour, as a ring.
#[derive(Debug, Clone)]
pub struct Window {
    buckets: [u32; 60],
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
    /// Adds `n` messages at `minute`; returns the count of the 60 minutes
    /// ending at the latest minute seen. Messages older than that are
    /// dropped (they still count in the hourly history).
    pub fn add(&mut self, minute: i64, n: u32) -> u32 {
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
                self.total -= self.buckets[slot];
                self.buckets[slot] = 0;
                slot = if slot == 59 { 0 } else { slot + 1 };
            }
            self.last = minute;
        } else if minute <= self.last - 60 {
            return self.total;
        }
        let slot = minute.rem_euclid(60) as usize;
        self.buckets[slot] = self.buckets[slot].saturating_add(n);
        self.total = self.total.saturating_add(n);
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
}
