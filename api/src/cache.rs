//! A small bounded memo for hot paths (verified tokens, parsed GraphQL documents).
//!
//! Bounded by entry count: when full, it starts over empty (a hot working set refills in a few
//! requests; eviction bookkeeping per hit would cost more than it saves). Callers bound the
//! size of each key and value themselves.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

pub struct Bounded<K, V> {
    capacity: usize,
    entries: Mutex<HashMap<K, V>>,
}

impl<K: Eq + Hash, V: Clone> Bounded<K, V> {
    pub fn new(capacity: usize) -> Self {
        Bounded {
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// A copy of the value for `key`, if remembered.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.entries.lock().ok()?.get(key).cloned()
    }

    /// Remembers `value` for `key` (emptying the memo first when it is full).
    pub fn put(&self, key: K, value: V) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= self.capacity && !entries.contains_key(&key) {
                entries.clear();
            }
            entries.insert(key, value);
        }
    }

    /// Forgets `key`.
    pub fn remove<Q>(&self, key: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(key);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::Bounded;

    #[test]
    fn never_holds_more_than_its_capacity() {
        let memo = Bounded::new(3);
        for n in 0..10 {
            memo.put(n, n * 2);
            assert!(memo.len() <= 3);
        }
        assert_eq!(memo.get(&9), Some(18));
        memo.remove(&9);
        assert_eq!(memo.get(&9), None);
    }
}
