//! A map from block ids to per-block state: a vector for the dense ids
//! traces normally use, a hash map for the rare large id, so that a trace
//! naming id 4,000,000,000 costs one entry, not 4 billion.

use std::collections::HashMap;

/// Ids below this are kept in the vector.
const DENSE_LIMIT: u32 = 1 << 24;

/// Per-id state with a default for ids never set.
#[derive(Debug, Clone, Default)]
pub struct IdMap<T: Copy + Default> {
    dense: Vec<T>,
    sparse: HashMap<u32, T>,
}

impl<T: Copy + Default> IdMap<T> {
    /// An empty map.
    pub fn new() -> Self {
        IdMap { dense: Vec::new(), sparse: HashMap::new() }
    }

    /// The state of `id` (the default if never set).
    #[inline]
    pub fn get(&self, id: u32) -> T {
        if id < DENSE_LIMIT {
            self.dense.get(id as usize).copied().unwrap_or_default()
        } else {
            self.sparse.get(&id).copied().unwrap_or_default()
        }
    }

    /// Set the state of `id`.
    #[inline]
    pub fn set(&mut self, id: u32, value: T) {
        if id < DENSE_LIMIT {
            let index = id as usize;
            if index >= self.dense.len() {
                self.dense.resize(index + 1, T::default());
            }
            self.dense[index] = value;
        } else {
            self.sparse.insert(id, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_and_sparse_ids_both_work() {
        let mut map: IdMap<u8> = IdMap::new();
        map.set(3, 1);
        map.set(4_000_000_000, 2);
        assert_eq!((map.get(3), map.get(4_000_000_000), map.get(7), map.get(u32::MAX)), (1, 2, 0, 0));
        assert!(map.dense.len() < 10);
    }
}
