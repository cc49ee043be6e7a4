//! The idempotent producer's state: for each producer id, its epoch and its
//! last five batches (sequence range and the offsets they got), so that a
//! retried batch gets its original offsets back and writes nothing, a
//! sequence gap or a stale epoch is refused, and all of it survives a
//! restart.
//!
//! The state is rebuilt from the log: a snapshot (`producer-state`, written
//! atomically at every roll and at a clean close, covering every batch
//! below its offset) plus a scan of the batches after it, across sealed
//! segments when the snapshot is older than the active one. This module
//! decides nothing about I/O order: `append.rs` calls it under the
//! partition's state lock, `roll.rs` and close (`mod.rs`) write the
//! snapshot, `recovery.rs` reads it and replays the log.

use std::collections::{HashMap, VecDeque};

use log_format::{BatchHeader, NO_PRODUCER_ID};

/// Batches remembered per producer (Kafka's
/// `max.in.flight.requests.per.connection` with idempotence).
pub(crate) const BATCHES_PER_PRODUCER: usize = 5;

/// What the log remembers of one appended batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchMeta {
    pub(crate) base_sequence: i32,
    pub(crate) last_sequence: i32,
    pub(crate) base_offset: u64,
    pub(crate) last_offset: u64,
    pub(crate) append_time: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Producer {
    epoch: i16,
    batches: VecDeque<BatchMeta>,
}

/// The answer to "may this batch be appended?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// No producer id: nothing to check.
    Anonymous,
    /// A new batch in sequence: append it, then [`ProducerStates::record`].
    Append,
    /// A retry of a batch already in the log: answer with these offsets.
    Duplicate(BatchMeta),
}

/// Why a producer's batch is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SequenceError {
    /// The batch's epoch is older than the producer's current one.
    StaleEpoch { epoch: i16, current: i16 },
    /// The batch does not follow the producer's last one.
    OutOfOrder { expected: i32, found: i32 },
}

/// The idempotent producer state of one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProducerStates {
    producers: HashMap<i64, Producer>,
}

/// The sequence of the last record of a batch (sequences wrap at
/// `i32::MAX` to 0, as in Kafka).
fn last_sequence(base_sequence: i32, record_count: u32) -> i32 {
    let span = i64::from(record_count.saturating_sub(1));
    ((i64::from(base_sequence) + span) % (i64::from(i32::MAX) + 1)) as i32
}

fn next_sequence(last_sequence: i32) -> i32 {
    if last_sequence == i32::MAX {
        0
    } else {
        last_sequence + 1
    }
}

impl ProducerStates {
    /// Decides what to do with a batch whose header is `header`.
    pub(crate) fn check(&self, header: &BatchHeader) -> Result<Verdict, SequenceError> {
        if header.producer_id == NO_PRODUCER_ID
            || header.producer_id < 0
            || header.base_sequence < 0
        {
            return Ok(Verdict::Anonymous);
        }
        let Some(producer) = self.producers.get(&header.producer_id) else {
            // Unknown producer (new, or its state expired): any start.
            return Ok(Verdict::Append);
        };
        if header.producer_epoch < producer.epoch {
            return Err(SequenceError::StaleEpoch {
                epoch: header.producer_epoch,
                current: producer.epoch,
            });
        }
        if header.producer_epoch > producer.epoch {
            // A new epoch starts its sequences over.
            return if header.base_sequence == 0 {
                Ok(Verdict::Append)
            } else {
                Err(SequenceError::OutOfOrder {
                    expected: 0,
                    found: header.base_sequence,
                })
            };
        }
        let last = last_sequence(header.base_sequence, header.record_count);
        if let Some(seen) = producer
            .batches
            .iter()
            .find(|b| b.base_sequence == header.base_sequence && b.last_sequence == last)
        {
            return Ok(Verdict::Duplicate(*seen));
        }
        let expected = producer
            .batches
            .back()
            .map_or(0, |b| next_sequence(b.last_sequence));
        if producer.batches.is_empty() || header.base_sequence == expected {
            Ok(Verdict::Append)
        } else {
            Err(SequenceError::OutOfOrder {
                expected,
                found: header.base_sequence,
            })
        }
    }

    /// Forgets the producers whose last batch was appended before
    /// `cutoff_ms` (server append time); returns how many.
    pub(crate) fn expire_idle(&mut self, cutoff_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, producer| {
            producer
                .batches
                .back()
                .is_some_and(|last| last.append_time >= cutoff_ms)
        });
        before - self.producers.len()
    }

    /// Remembers an appended batch (its header as stamped).
    pub(crate) fn record(&mut self, header: &BatchHeader) {
        if header.producer_id < 0 || header.base_sequence < 0 {
            return;
        }
        let meta = BatchMeta {
            base_sequence: header.base_sequence,
            last_sequence: last_sequence(header.base_sequence, header.record_count),
            base_offset: header.base_offset,
            last_offset: header.last_offset(),
            append_time: header.append_time,
        };
        let producer = self
            .producers
            .entry(header.producer_id)
            .or_insert_with(|| Producer {
                epoch: header.producer_epoch,
                batches: VecDeque::with_capacity(BATCHES_PER_PRODUCER),
            });
        if header.producer_epoch > producer.epoch {
            producer.epoch = header.producer_epoch;
            producer.batches.clear();
        }
        if producer.batches.len() == BATCHES_PER_PRODUCER {
            producer.batches.pop_front();
        }
        producer.batches.push_back(meta);
    }

    /// Encodes the state: `count u32`, then per producer `id i64 | epoch
    /// i16 | n u8 | n × (base_seq i32 | last_seq i32 | base_offset u64 |
    /// last_offset u64 | append_time i64)`, little-endian.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let mut ids: Vec<&i64> = self.producers.keys().collect();
        ids.sort_unstable();
        out.extend_from_slice(&(ids.len() as u32).to_le_bytes());
        for id in ids {
            let producer = &self.producers[id];
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&producer.epoch.to_le_bytes());
            out.push(producer.batches.len() as u8);
            for b in &producer.batches {
                out.extend_from_slice(&b.base_sequence.to_le_bytes());
                out.extend_from_slice(&b.last_sequence.to_le_bytes());
                out.extend_from_slice(&b.base_offset.to_le_bytes());
                out.extend_from_slice(&b.last_offset.to_le_bytes());
                out.extend_from_slice(&b.append_time.to_le_bytes());
            }
        }
    }

    /// Decodes what [`encode`](Self::encode) wrote; `None` if malformed.
    pub(crate) fn decode(bytes: &[u8]) -> Option<ProducerStates> {
        let mut r = Reader { bytes, pos: 0 };
        let count = u32::from_le_bytes(r.array()?);
        let mut producers = HashMap::new();
        for _ in 0..count {
            let id = i64::from_le_bytes(r.array()?);
            let epoch = i16::from_le_bytes(r.array()?);
            let n = r.array::<1>()?[0] as usize;
            if n > BATCHES_PER_PRODUCER {
                return None;
            }
            let mut batches = VecDeque::with_capacity(n);
            for _ in 0..n {
                batches.push_back(BatchMeta {
                    base_sequence: i32::from_le_bytes(r.array()?),
                    last_sequence: i32::from_le_bytes(r.array()?),
                    base_offset: u64::from_le_bytes(r.array()?),
                    last_offset: u64::from_le_bytes(r.array()?),
                    append_time: i64::from_le_bytes(r.array()?),
                });
            }
            producers.insert(id, Producer { epoch, batches });
        }
        (r.pos == bytes.len()).then_some(ProducerStates { producers })
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let slice = self.bytes.get(self.pos..self.pos + N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        self.pos += N;
        Some(out)
    }
}

/// Magic of the producer-state snapshot file.
const SNAPSHOT_MAGIC: &[u8; 4] = b"LPRS";

/// Encodes the producer state covering every batch below `offset` as the
/// snapshot file holds it: `magic | offset u64 | state | crc32`. Cheap
/// enough to run under the partition lock; the write happens after it.
pub(crate) fn encode_producer_snapshot(offset: u64, states: &ProducerStates) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(64);
    bytes.extend_from_slice(SNAPSHOT_MAGIC);
    bytes.extend_from_slice(&offset.to_le_bytes());
    states.encode(&mut bytes);
    let crc = crate::util::crc32(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes
}

/// Replaces the snapshot file atomically with `bytes` (from
/// [`encode_producer_snapshot`]).
pub(crate) fn write_producer_snapshot(
    fs: &dyn crate::io::Fs,
    dir: &std::path::Path,
    bytes: &[u8],
) -> Result<(), crate::error::Error> {
    crate::io::durable::write_atomic(fs, &dir.join(crate::layout::PRODUCER_STATE), bytes)
}

/// Reads the snapshot: `Ok(None)` when there is none, an error naming the
/// file when it is damaged (the caller logs it and rebuilds what it can).
pub(crate) fn read_producer_snapshot(
    fs: &dyn crate::io::Fs,
    dir: &std::path::Path,
) -> Result<Option<(u64, ProducerStates)>, String> {
    let path = dir.join(crate::layout::PRODUCER_STATE);
    let bytes = match fs.read(&path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(format!("cannot read {}: {err}", path.display())),
    };
    let damaged = || format!("{} is damaged", path.display());
    if bytes.len() < 16 || &bytes[..4] != SNAPSHOT_MAGIC {
        return Err(damaged());
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crate::util::crc32(body).to_le_bytes() != crc {
        return Err(damaged());
    }
    let mut offset = [0u8; 8];
    offset.copy_from_slice(&body[4..12]);
    let states = ProducerStates::decode(&body[12..]).ok_or_else(damaged)?;
    Ok(Some((u64::from_le_bytes(offset), states)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use log_format::{BatchBuilder, Limits, NewRecord, ProducerInfo};

    fn header(id: i64, epoch: i16, seq: i32, records: u32, base_offset: u64) -> BatchHeader {
        let mut builder = BatchBuilder::new(Limits::default());
        for _ in 0..records {
            builder.push(&NewRecord::value(0, b"v")).unwrap();
        }
        builder.set_producer(ProducerInfo {
            producer_id: id,
            producer_epoch: epoch,
            base_sequence: seq,
        });
        let mut bytes = builder.finish().unwrap().to_vec();
        log_format::stamp(&mut bytes, base_offset, 0, 1).unwrap();
        BatchHeader::parse(&bytes, 0, &Limits::default()).unwrap()
    }

    #[test]
    fn retries_of_the_last_five_batches_are_duplicates_and_gaps_are_refused() {
        let mut states = ProducerStates::default();
        let mut offset = 0;
        for seq in (0..30).step_by(3) {
            let h = header(7, 0, seq, 3, offset);
            assert_eq!(states.check(&h), Ok(Verdict::Append), "seq {seq}");
            states.record(&h);
            offset += 3;
        }
        // The last five batches (sequences 15..30) are remembered.
        for (i, seq) in (15..30).step_by(3).enumerate() {
            let retry = header(7, 0, seq, 3, 999);
            let Ok(Verdict::Duplicate(meta)) = states.check(&retry) else {
                panic!("seq {seq} not a duplicate");
            };
            assert_eq!(meta.base_offset, 15 + 3 * i as u64);
        }
        assert_eq!(
            states.check(&header(7, 0, 33, 1, 0)),
            Err(SequenceError::OutOfOrder {
                expected: 30,
                found: 33
            })
        );
        assert_eq!(states.check(&header(7, 0, 30, 1, 0)), Ok(Verdict::Append));
    }

    #[test]
    fn epochs_fence_older_producers_and_restart_sequences() {
        let mut states = ProducerStates::default();
        states.record(&header(1, 2, 0, 1, 0));
        assert_eq!(
            states.check(&header(1, 1, 1, 1, 0)),
            Err(SequenceError::StaleEpoch {
                epoch: 1,
                current: 2
            })
        );
        assert_eq!(
            states.check(&header(1, 3, 5, 1, 0)),
            Err(SequenceError::OutOfOrder {
                expected: 0,
                found: 5
            })
        );
        assert_eq!(states.check(&header(1, 3, 0, 1, 0)), Ok(Verdict::Append));
        assert_eq!(
            states.check(&header(-1, 0, 0, 1, 0)),
            Ok(Verdict::Anonymous)
        );
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        let mut states = ProducerStates::default();
        states.record(&header(1, 0, i32::MAX - 1, 2, 0));
        assert_eq!(states.check(&header(1, 0, 0, 1, 2)), Ok(Verdict::Append));
    }

    #[test]
    fn the_state_roundtrips_through_its_encoding() {
        let mut states = ProducerStates::default();
        for id in 0..4 {
            for seq in 0..7 {
                states.record(&header(id, 1, seq, 1, (id * 10 + i64::from(seq)) as u64));
            }
        }
        let mut bytes = Vec::new();
        states.encode(&mut bytes);
        assert_eq!(ProducerStates::decode(&bytes), Some(states));
        assert_eq!(ProducerStates::decode(&bytes[..bytes.len() - 1]), None);
    }
}
