//! Limits checked while decoding, decompressing and building batches.
//!
//! Limits are parameters, not constants: the storage and the server choose
//! them (and keep them consistent with their message size limits). This
//! module only holds the numbers and their defaults.

/// Default [`Limits::max_batch_bytes`]: 8 MiB.
pub const DEFAULT_MAX_BATCH_BYTES: u32 = 8 * 1024 * 1024;

/// Default [`Limits::max_records`]: 1,048,576 records.
pub const DEFAULT_MAX_RECORDS: u32 = 1024 * 1024;

/// Default [`Limits::max_uncompressed_bytes`]: 64 MiB.
pub const DEFAULT_MAX_UNCOMPRESSED_BYTES: u32 = 64 * 1024 * 1024;

/// Upper bounds on one batch, checked from the header before the body is
/// read, so a damaged or hostile length field cannot make a reader wait for,
/// or reserve, more than the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest batch, header included, in bytes. Default
    /// [`DEFAULT_MAX_BATCH_BYTES`] (8 MiB).
    pub max_batch_bytes: u32,
    /// Most records in one batch. Default [`DEFAULT_MAX_RECORDS`] (1,048,576).
    pub max_records: u32,
    /// Most bytes the records of a compressed batch may decompress to.
    /// Decompression stops there (the batch is corrupt), so a small batch
    /// cannot make a reader allocate what its compressed stream claims.
    /// Default [`DEFAULT_MAX_UNCOMPRESSED_BYTES`] (64 MiB).
    pub max_uncompressed_bytes: u32,
}

impl Limits {
    /// No limit beyond what the format itself can describe (`u32::MAX`
    /// bytes and records). For tools that inspect data written under any
    /// configuration; never for input from the network.
    pub const fn unlimited() -> Limits {
        Limits {
            max_batch_bytes: u32::MAX,
            max_records: u32::MAX,
            max_uncompressed_bytes: u32::MAX,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            max_records: DEFAULT_MAX_RECORDS,
            max_uncompressed_bytes: DEFAULT_MAX_UNCOMPRESSED_BYTES,
        }
    }
}
