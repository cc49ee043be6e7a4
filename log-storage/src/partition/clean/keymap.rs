//! The cleaner's key map: for each key seen in the dirty part of a log, the
//! offset of its latest record, in a bounded amount of memory.
//!
//! Keys are stored as 128-bit hashes (XXH3-128), never as the keys
//! themselves, so the map's size depends on the number of keys only. Two
//! keys with the same hash would make the older record of one look
//! superseded by the other: with 128 bits the odds are about n² / 2¹²⁹
//! (below 10⁻²⁵ for a billion keys), far below those of an undetected disk
//! error, which is why Kafka's 128-bit MD5 map makes the same trade.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Bytes one entry of the map is counted for: the 16-byte hash, the 8-byte
/// offset and the hash table's own overhead (control byte, load factor).
pub const KEY_MAP_ENTRY_BYTES: usize = 32;

/// The latest offset per key hash, holding at most
/// [`KeyMap::capacity`] keys (see the module docs). One map serves every
/// pass of a cleaner thread: it is cleared, not reallocated.
#[derive(Debug)]
pub struct KeyMap {
    offsets: HashMap<u128, u64, BuildHasherDefault<FoldHasher>>,
    capacity: usize,
}

impl KeyMap {
    /// A map of at most `bytes` of memory ([`KEY_MAP_ENTRY_BYTES`] per
    /// key, at least 1024 keys). Nothing is allocated until it is used.
    pub fn with_memory(bytes: usize) -> KeyMap {
        KeyMap {
            offsets: HashMap::default(),
            capacity: (bytes / KEY_MAP_ENTRY_BYTES).max(1024),
        }
    }

    /// Most keys the map holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Keys in the map now.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// Whether the map holds no key.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Forgets every key, keeping the memory.
    pub(crate) fn clear(&mut self) {
        self.offsets.clear();
    }

    /// Records `offset` as the latest of `key`. `false` (and nothing
    /// changed) when `key` is new and the map is full.
    pub(crate) fn insert(&mut self, key: &[u8], offset: u64) -> bool {
        let hash = hash(key);
        if let Some(latest) = self.offsets.get_mut(&hash) {
            *latest = (*latest).max(offset);
            return true;
        }
        if self.offsets.len() >= self.capacity {
            return false;
        }
        self.offsets.insert(hash, offset);
        true
    }

    /// The latest offset recorded for `key`.
    pub(crate) fn get(&self, key: &[u8]) -> Option<u64> {
        self.offsets.get(&hash(key)).copied()
    }
}

fn hash(key: &[u8]) -> u128 {
    twox_hash::XxHash3_128::oneshot(key)
}

/// The map's keys are hashes already: the table folds them to 64 bits
/// instead of hashing them again.
#[derive(Debug, Default)]
struct FoldHasher(u64);

impl Hasher for FoldHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(word);
        }
    }

    fn write_u128(&mut self, value: u128) {
        self.0 ^= (value as u64) ^ ((value >> 64) as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_offset_and_refuses_new_keys_when_full() {
        let mut map = KeyMap::with_memory(0);
        assert_eq!(map.capacity(), 1024);
        for i in 0..1024u64 {
            assert!(map.insert(&i.to_be_bytes(), i));
        }
        assert!(!map.insert(b"one more", 5000), "full");
        assert!(map.insert(&7u64.to_be_bytes(), 9000), "a known key updates");
        assert_eq!(map.get(&7u64.to_be_bytes()), Some(9000));
        assert!(
            map.insert(&7u64.to_be_bytes(), 3),
            "an older offset is ignored"
        );
        assert_eq!(map.get(&7u64.to_be_bytes()), Some(9000));
        assert_eq!(map.get(b"one more"), None);
        map.clear();
        assert!(map.is_empty());
    }
}
