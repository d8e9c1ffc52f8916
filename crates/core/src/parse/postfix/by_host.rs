//! A table keyed by (syslog host, key), looked up with the line's host as
//! a borrowed `&str`: with `(String, _)` keys every line paid for a copy of
//! its host name just to look something up, about a tenth of the parse
//! time on the import benchmark (perf).
//!
//! Hashed with foldhash, randomly seeded: SipHash, the standard one, was a
//! twentieth of the parser's time, and what a log holds cannot be chosen
//! to collide with a seed it does not know.

use foldhash::HashMap;
use foldhash::HashMapExt;
use std::borrow::Borrow;
use std::collections::hash_map::Entry;
use std::hash::Hash;

#[derive(Debug)]
pub(super) struct ByHost<K, V> {
    hosts: HashMap<String, HashMap<K, V>>,
    len: usize,
}

impl<K, V> Default for ByHost<K, V> {
    fn default() -> Self {
        ByHost {
            hosts: HashMap::new(),
            len: 0,
        }
    }
}

impl<K: Hash + Eq, V> ByHost<K, V> {
    /// Entries held, over all hosts.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn get<Q>(&self, host: &str, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.hosts.get(host)?.get(key)
    }

    /// The entry of `(host, key)`, added with its default value if missing.
    pub(super) fn entry(&mut self, host: &str, key: K) -> &mut V
    where
        V: Default,
    {
        let len = &mut self.len;
        match table(&mut self.hosts, host).entry(key) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                *len += 1;
                e.insert(V::default())
            }
        }
    }

    pub(super) fn insert(&mut self, host: &str, key: K, value: V) {
        if table(&mut self.hosts, host).insert(key, value).is_none() {
            self.len += 1;
        }
    }

    pub(super) fn remove<Q>(&mut self, host: &str, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let table = self.hosts.get_mut(host)?;
        let value = table.remove(key)?;
        self.len -= 1;
        Some(value)
    }

    pub(super) fn clear(&mut self) {
        self.hosts.clear();
        self.len = 0;
    }

    /// Removes and returns every value.
    pub(crate) fn drain_values(&mut self) -> impl Iterator<Item = V> + '_ {
        self.len = 0;
        self.hosts.drain().flat_map(|(_, t)| t.into_values())
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&str, &K, &V)> {
        self.hosts
            .iter()
            .flat_map(|(h, t)| t.iter().map(move |(k, v)| (h.as_str(), k, v)))
    }
}

/// Host tables kept while empty. A host's tables empty and fill again
/// all the time (a queue id waits only until qmgr's line): dropping an
/// empty table at once made every line of a busy host rebuild and regrow
/// one, ten million allocations on the import benchmark's log. A log
/// naming many hosts over time must not keep an empty table per host
/// either: past this many, a new host's table first clears out the empty
/// ones.
const KEEP_HOSTS: usize = 64;

/// The table of `host`, added if missing (the host copied only then).
fn table<'a, K, V>(
    hosts: &'a mut HashMap<String, HashMap<K, V>>,
    host: &str,
) -> &'a mut HashMap<K, V> {
    if !hosts.contains_key(host) {
        if hosts.len() >= KEEP_HOSTS {
            hosts.retain(|_, t| !t.is_empty());
        }
        hosts.insert(host.to_owned(), HashMap::new());
    }
    hosts.get_mut(host).expect("inserted above")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_per_host_and_empty_hosts_are_dropped() {
        let mut t: ByHost<u32, u32> = ByHost::default();
        *t.entry("mx1", 7) += 1;
        *t.entry("mx1", 7) += 1;
        t.insert("mx2", 7, 10);
        assert_eq!(t.len(), 2);
        assert_eq!(t.get("mx1", &7), Some(&2));
        assert_eq!(t.get("mx2", &7), Some(&10));
        assert_eq!(t.get("mx3", &7), None);
        assert_eq!(t.remove("mx2", &7), Some(10));
        assert_eq!(t.remove("mx2", &7), None);
        assert_eq!(t.len(), 1);
        // The emptied host's table stays for its next entry...
        assert_eq!(t.hosts.len(), 2);
        t.insert("mx1", 8, 5);
        let mut all: Vec<_> = t.drain_values().collect();
        all.sort_unstable();
        assert_eq!(all, [2, 5]);
        assert_eq!(t.len(), 0);
        // ...until KEEP_HOSTS hosts are known: a new one clears the empty.
        for h in 0..KEEP_HOSTS {
            t.insert(&format!("h{h}"), 1, 1);
            t.remove(&format!("h{h}"), &1);
        }
        t.insert("busy", 1, 1);
        t.insert("new", 1, 1);
        assert_eq!(t.hosts.len(), 2, "only the tables with entries are left");
    }

    #[test]
    fn string_keys_are_found_by_str() {
        let mut t: ByHost<String, u8> = ByHost::default();
        t.insert("mx1", "4F1A2".to_owned(), 1);
        assert_eq!(t.remove("mx1", "4F1A2"), Some(1));
        assert_eq!(t.len(), 0);
    }
}
