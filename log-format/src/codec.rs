//! The compression codecs of a batch's records: Kafka's codec ids and
//! names ([`Codec`]), and compressing and decompressing a byte slice with
//! a bound on what decompression may produce ([`CodecError`]).
//!
//! Every codec writes the compressed form Kafka clients write in magic-2
//! batches and reads what any of them writes (the Java client, librdkafka,
//! kafka-python):
//!
//! | codec  | id | written | also read |
//! |--------|---:|---------|-----------|
//! | none   | 0 | the bytes as they are | |
//! | gzip   | 1 | one gzip member (RFC 1952), level 6, as `GZIPOutputStream` | several members |
//! | snappy | 2 | xerial framing, 32 KiB blocks, as snappy-java's `SnappyOutputStream` | raw snappy (older librdkafka), concatenated xerial streams |
//! | lz4    | 3 | one LZ4 frame, independent 64 KiB blocks, no checksums, as Kafka's `Lz4BlockOutputStream` | linked blocks, block and content checksums, a content size, several frames |
//! | zstd   | 4 | one zstd frame, level 3, with its content size | several frames, windows up to 2^27 bytes |
//!
//! The xerial framing: the 8-byte magic `82 'S' 'N' 'A' 'P' 'P' 'Y' 00`,
//! two big-endian `i32`s (version 1, compatible version 1), then blocks of
//! a big-endian `u32` compressed length and that many bytes of one raw
//! snappy block. Raw snappy is one raw block and nothing else. The magic is
//! never the start of a valid raw block, so the two are told apart by it.
//!
//! Decompression is bounded: it never produces more than the caller's
//! limit and never allocates by a length the stream declares (a zstd or
//! lz4 content size, a snappy block length) beyond what the limit and the
//! input's size allow. Output grows as it is produced. The codec
//! libraries' own working memory is bounded by the format, not by the
//! stream's claims: gzip keeps a 32 KiB window; lz4 up to three times the
//! frame's block size (64 KiB to 4 MiB); zstd a window of at most 2^27
//! bytes (what Kafka's highest level, 22, writes; a larger one is refused),
//! of which it touches only what it has decoded. Malformed input is an
//! error, never a panic.
//!
//! Each codec but none sits behind a cargo feature of the same name (all
//! on by default); with it off, both directions answer
//! [`CodecError::Unsupported`].
//!
//! This module works on bytes in memory and nothing else: it knows neither
//! where a batch keeps its compressed records nor which bits of the
//! attributes hold the codec (beyond [`ATTR_CODEC_MASK`]); the batch
//! format does.

use std::fmt;

use bytes::BytesMut;

/// Bits 0–2 of the attributes: the compression codec of the records.
pub const ATTR_CODEC_MASK: u16 = 0b111;

/// The compression codec of a batch's records (attribute bits 0–2), with
/// Kafka's ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Codec {
    /// Records are stored as they are. Id 0.
    #[default]
    None,
    /// gzip (deflate in a gzip member). Id 1.
    Gzip,
    /// snappy, in the xerial framing. Id 2.
    Snappy,
    /// LZ4, in the LZ4 frame format. Id 3.
    Lz4,
    /// Zstandard. Id 4.
    Zstd,
}

impl Codec {
    /// The highest codec id this crate knows; ids above it, up to
    /// [`ATTR_CODEC_MASK`], are unknown.
    pub const MAX_KNOWN_ID: u16 = 4;

    /// The codec for an id (the attribute bits under [`ATTR_CODEC_MASK`]),
    /// or `None` when the id is unknown (5–7, or any other value).
    pub fn from_id(id: u16) -> Option<Codec> {
        match id {
            0 => Some(Codec::None),
            1 => Some(Codec::Gzip),
            2 => Some(Codec::Snappy),
            3 => Some(Codec::Lz4),
            4 => Some(Codec::Zstd),
            _ => None,
        }
    }

    /// The id stored in the attribute bits.
    pub fn id(self) -> u16 {
        match self {
            Codec::None => 0,
            Codec::Gzip => 1,
            Codec::Snappy => 2,
            Codec::Lz4 => 3,
            Codec::Zstd => 4,
        }
    }

    /// The codec's name as Kafka's `compression.type` spells it: `"none"`,
    /// `"gzip"`, `"snappy"`, `"lz4"` or `"zstd"`.
    pub fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Snappy => "snappy",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
        }
    }

    /// Whether this build compresses and decompresses the codec: none
    /// always, the others when their cargo feature is on.
    pub fn is_supported(self) -> bool {
        match self {
            Codec::None => true,
            Codec::Gzip => cfg!(feature = "gzip"),
            Codec::Snappy => cfg!(feature = "snappy"),
            Codec::Lz4 => cfg!(feature = "lz4"),
            Codec::Zstd => cfg!(feature = "zstd"),
        }
    }
}

/// Why compressing or decompressing failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodecError {
    /// The decompressed data would be longer than the limit the caller
    /// set. Decompression stopped at the limit; nothing was kept.
    TooLarge {
        /// The limit, in decompressed bytes.
        limit: usize,
    },
    /// The bytes are not a valid compressed stream of the codec: damaged,
    /// truncated, or of a form the codec does not read.
    Malformed {
        /// The codec that was decoding.
        codec: Codec,
        /// What was wrong, in a few words.
        reason: String,
    },
    /// The codec's cargo feature is off in this build.
    Unsupported {
        /// The codec asked for.
        codec: Codec,
    },
    /// The codec library failed for a reason other than its input (it
    /// could not set itself up). Not expected in practice; reported rather
    /// than panicking.
    Internal {
        /// The codec that failed.
        codec: Codec,
        /// The library's message.
        reason: String,
    },
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::TooLarge { limit } => {
                write!(f, "decompressed data exceeds the limit of {limit} bytes")
            }
            CodecError::Malformed { codec, reason } => {
                write!(f, "malformed {} data: {reason}", codec.name())
            }
            CodecError::Unsupported { codec } => write!(
                f,
                "{0} compression is not supported by this build (cargo feature `{0}` is off)",
                codec.name()
            ),
            CodecError::Internal { codec, reason } => {
                write!(f, "{} codec failed: {reason}", codec.name())
            }
        }
    }
}

impl std::error::Error for CodecError {}

/// Longest `reason` kept from a codec library's message, in characters.
const MAX_REASON_CHARS: usize = 96;

/// A `Malformed` error of `codec` with a short reason.
fn malformed(codec: Codec, reason: impl fmt::Display) -> CodecError {
    CodecError::Malformed {
        codec,
        reason: short(reason),
    }
}

/// An `Internal` error of `codec` with a short reason.
#[cfg(any(
    feature = "gzip",
    feature = "snappy",
    feature = "lz4",
    feature = "zstd"
))]
fn internal(codec: Codec, reason: impl fmt::Display) -> CodecError {
    CodecError::Internal {
        codec,
        reason: short(reason),
    }
}

/// `reason` as a string of at most [`MAX_REASON_CHARS`] characters.
fn short(reason: impl fmt::Display) -> String {
    let text = reason.to_string();
    match text.char_indices().nth(MAX_REASON_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// Appends the decompressed bytes of `input`, compressed with `codec`, to
/// `out`.
///
/// At most `limit` bytes are appended: a stream that decompresses to more
/// is [`CodecError::TooLarge`], found after producing at most `limit + 1`
/// bytes, never by believing a length the stream declares. `out` grows as
/// output is produced; up front it reserves at most
/// `min(limit, 4 × input.len())`. On any error `out` is left as it was
/// (though its capacity may have grown by up to about twice `limit`).
///
/// Empty input is malformed for every codec but none (a compressed stream
/// is never empty).
pub(crate) fn decompress(
    codec: Codec,
    input: &[u8],
    limit: usize,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    if !codec.is_supported() {
        return Err(CodecError::Unsupported { codec });
    }
    if codec == Codec::None {
        if input.len() > limit {
            return Err(CodecError::TooLarge { limit });
        }
        out.extend_from_slice(input);
        return Ok(());
    }
    if input.is_empty() {
        return Err(malformed(codec, "empty input"));
    }
    let start = out.len();
    let result = match codec {
        #[cfg(feature = "gzip")]
        Codec::Gzip => gzip::decompress(input, limit, out),
        #[cfg(feature = "snappy")]
        Codec::Snappy => snappy::decompress(input, limit, out),
        #[cfg(feature = "lz4")]
        Codec::Lz4 => lz4::decompress(input, limit, out),
        #[cfg(feature = "zstd")]
        Codec::Zstd => zstandard::decompress(input, limit, out),
        // `None` was copied above; a codec whose feature is off was refused.
        _ => Err(CodecError::Unsupported { codec }),
    };
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Appends the compressed form of `input` under `codec` to `out`, in the
/// form Kafka clients read (see the module docs). On error `out` is left
/// as it was.
pub(crate) fn compress(codec: Codec, input: &[u8], out: &mut BytesMut) -> Result<(), CodecError> {
    let start = out.len();
    let result = match codec {
        Codec::None => {
            out.extend_from_slice(input);
            Ok(())
        }
        #[cfg(feature = "gzip")]
        Codec::Gzip => gzip::compress(input, out),
        #[cfg(feature = "snappy")]
        Codec::Snappy => snappy::compress(input, out),
        #[cfg(feature = "lz4")]
        Codec::Lz4 => lz4::compress(input, out),
        #[cfg(feature = "zstd")]
        Codec::Zstd => zstandard::compress(input, out),
        // A codec whose feature is off.
        #[allow(unreachable_patterns)]
        _ => Err(CodecError::Unsupported { codec }),
    };
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Reading a streaming decoder into a bounded `Vec`: gzip, lz4 and zstd.
#[cfg(any(feature = "gzip", feature = "lz4", feature = "zstd"))]
mod bounded {
    use std::io::{self, Read};

    use super::{Codec, CodecError, malformed};

    /// How many times the input's length `out` may reserve up front (never
    /// more than the limit).
    const RESERVE_PER_INPUT_BYTE: usize = 4;

    /// Appends what `decoder` produces to `out`, reading at most
    /// `limit + 1` bytes from it: more than `limit` is `TooLarge`.
    /// `input_len` (the compressed length) sizes the first reservation.
    pub(super) fn read(
        codec: Codec,
        decoder: impl Read,
        input_len: usize,
        limit: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        let start = out.len();
        out.reserve(input_len.saturating_mul(RESERVE_PER_INPUT_BYTE).min(limit));
        let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
        match decoder.take(cap).read_to_end(out) {
            Ok(_) if out.len() - start > limit => Err(CodecError::TooLarge { limit }),
            Ok(_) => Ok(()),
            Err(e) => Err(io_malformed(codec, &e)),
        }
    }

    /// A decoder's I/O error as `Malformed`.
    pub(super) fn io_malformed(codec: Codec, e: &io::Error) -> CodecError {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            malformed(codec, "truncated input")
        } else {
            malformed(codec, e)
        }
    }
}

/// gzip: `flate2` (miniz_oxide).
#[cfg(feature = "gzip")]
mod gzip {
    use std::io::Write;

    use bytes::{BufMut, BytesMut};
    use flate2::Compression;
    use flate2::bufread::MultiGzDecoder;
    use flate2::write::GzEncoder;

    use super::{Codec, CodecError, bounded, internal};

    /// The deflate level written: zlib's default, which is also Kafka's.
    const LEVEL: u32 = 6;

    pub(super) fn decompress(
        input: &[u8],
        limit: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        bounded::read(
            Codec::Gzip,
            MultiGzDecoder::new(input),
            input.len(),
            limit,
            out,
        )
    }

    pub(super) fn compress(input: &[u8], out: &mut BytesMut) -> Result<(), CodecError> {
        let mut encoder = GzEncoder::new(out.writer(), Compression::new(LEVEL));
        encoder
            .write_all(input)
            .and_then(|()| encoder.finish())
            .map(drop)
            .map_err(|e| internal(Codec::Gzip, e))
    }
}

/// snappy: `snap`'s raw blocks, in the xerial framing.
#[cfg(feature = "snappy")]
#[expect(
    clippy::big_endian_bytes,
    reason = "the xerial framing's integers are big-endian"
)]
mod snappy {
    use bytes::{BufMut, BytesMut};

    use super::{Codec, CodecError, internal, malformed};

    /// The xerial stream magic.
    pub(super) const XERIAL_MAGIC: [u8; 8] = *b"\x82SNAPPY\x00";
    /// Magic, version and compatible version.
    pub(super) const XERIAL_HEADER_LEN: usize = 16;
    /// The version and compatible version written (snappy-java's 1 and 1).
    const XERIAL_VERSION: i32 = 1;
    /// Uncompressed bytes per xerial block written (snappy-java's default).
    pub(super) const XERIAL_BLOCK: usize = 32 * 1024;
    /// Most output one byte of a raw snappy block can stand for: a 3-byte
    /// copy element copies at most 64 bytes.
    const MAX_EXPANSION: usize = 22;

    pub(super) fn decompress(
        input: &[u8],
        limit: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        if !input.starts_with(&XERIAL_MAGIC) {
            return block(input, limit, limit, out);
        }
        let start = out.len();
        let mut rest = input;
        while !rest.is_empty() {
            if rest.starts_with(&XERIAL_MAGIC) {
                rest = header(rest)?;
                continue;
            }
            let Some((len, after)) = rest.split_first_chunk::<4>() else {
                return Err(malformed(Codec::Snappy, "truncated block length"));
            };
            let len = u32::from_be_bytes(*len) as usize;
            let Some((data, after)) = after.split_at_checked(len) else {
                return Err(malformed(Codec::Snappy, "truncated block"));
            };
            let budget = limit - (out.len() - start);
            block(data, budget, limit, out)?;
            rest = after;
        }
        Ok(())
    }

    /// Checks the xerial header at the start of `input` and returns what
    /// follows it.
    fn header(input: &[u8]) -> Result<&[u8], CodecError> {
        let Some((header, rest)) = input.split_at_checked(XERIAL_HEADER_LEN) else {
            return Err(malformed(Codec::Snappy, "truncated xerial header"));
        };
        let int = |at: usize| {
            i32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
        };
        // As snappy-java (the Java client's and broker's reader): a version
        // below 1 is refused, the compatible version is not looked at. So
        // versions written little-endian, as some producers do, still read.
        let version = int(8);
        if version < XERIAL_VERSION {
            return Err(malformed(
                Codec::Snappy,
                format!("unsupported xerial version {version}"),
            ));
        }
        Ok(rest)
    }

    /// Appends one raw snappy block, refused before anything is allocated
    /// when it declares more than `budget` bytes (`TooLarge`, of `limit`)
    /// or more than its length can encode (`Malformed`).
    fn block(
        data: &[u8],
        budget: usize,
        limit: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        let declared = snap::raw::decompress_len(data).map_err(|e| malformed(Codec::Snappy, e))?;
        if declared > data.len().saturating_mul(MAX_EXPANSION) {
            return Err(malformed(
                Codec::Snappy,
                format!("block declares {declared} bytes from {} bytes", data.len()),
            ));
        }
        if declared > budget {
            return Err(CodecError::TooLarge { limit });
        }
        let at = out.len();
        out.resize(at + declared, 0);
        match snap::raw::Decoder::new().decompress(data, &mut out[at..]) {
            Ok(n) if n == declared => Ok(()),
            Ok(_) => Err(malformed(Codec::Snappy, "block shorter than declared")),
            Err(e) => Err(malformed(Codec::Snappy, e)),
        }
    }

    pub(super) fn compress(input: &[u8], out: &mut BytesMut) -> Result<(), CodecError> {
        out.reserve(XERIAL_HEADER_LEN + snap::raw::max_compress_len(input.len().min(XERIAL_BLOCK)));
        out.put_slice(&XERIAL_MAGIC);
        out.put_slice(&XERIAL_VERSION.to_be_bytes());
        out.put_slice(&XERIAL_VERSION.to_be_bytes());
        let mut encoder = snap::raw::Encoder::new();
        for chunk in input.chunks(XERIAL_BLOCK) {
            let len_at = out.len();
            let data_at = len_at + 4;
            out.resize(data_at + snap::raw::max_compress_len(chunk.len()), 0);
            let n = encoder
                .compress(chunk, &mut out[data_at..])
                .map_err(|e| internal(Codec::Snappy, e))?;
            let len = u32::try_from(n).map_err(|e| internal(Codec::Snappy, e))?;
            out[len_at..data_at].copy_from_slice(&len.to_be_bytes());
            out.truncate(data_at + n);
        }
        Ok(())
    }
}

/// lz4: `lz4_flex`'s frame format, each frame's structure checked first
/// (`lz4_flex` reads a frame cut at a block boundary as complete).
#[cfg(feature = "lz4")]
mod lz4 {
    use std::io::{self, Read, Write};

    use bytes::{BufMut, BytesMut};
    use lz4_flex::frame::{BlockMode, BlockSize, FrameDecoder, FrameEncoder, FrameInfo};

    use super::{Codec, CodecError, bounded, internal, malformed};

    /// The LZ4 frame magic (little-endian on the wire).
    const MAGIC: u32 = 0x184D_2204;
    /// FLG bit: each block is followed by its checksum.
    const FLG_BLOCK_CHECKSUMS: u8 = 0x10;
    /// FLG bit: the descriptor holds an 8-byte content size.
    const FLG_CONTENT_SIZE: u8 = 0x08;
    /// FLG bit: the end mark is followed by a content checksum.
    const FLG_CONTENT_CHECKSUM: u8 = 0x04;
    /// FLG bit: the descriptor holds a 4-byte dictionary id.
    const FLG_DICT_ID: u8 = 0x01;
    /// A block size word's flag for a block stored uncompressed.
    const BLOCK_UNCOMPRESSED: u32 = 0x8000_0000;

    pub(super) fn decompress(
        input: &[u8],
        limit: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        // `lz4_flex` stops after one frame: each gets a decoder of its own.
        let start = out.len();
        let mut rest = input;
        while !rest.is_empty() {
            let (frame, after) =
                split_frame(rest).map_err(|reason| malformed(Codec::Lz4, reason))?;
            let budget = limit - (out.len() - start);
            bounded::read(
                Codec::Lz4,
                WholeFrame(FrameDecoder::new(frame)),
                frame.len(),
                budget,
                out,
            )
            .map_err(|e| match e {
                CodecError::TooLarge { .. } => CodecError::TooLarge { limit },
                other => other,
            })?;
            rest = after;
        }
        Ok(())
    }

    /// A frame's decoder that reads to the frame's end: `lz4_flex` answers
    /// end of input after a block that decodes to nothing.
    struct WholeFrame<'a>(FrameDecoder<&'a [u8]>);

    impl Read for WholeFrame<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            loop {
                let before = self.0.get_ref().len();
                let n = self.0.read(buf)?;
                let left = self.0.get_ref().len();
                if n > 0 || buf.is_empty() || left == 0 {
                    return Ok(n);
                }
                if left == before {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "frame ends before its end mark",
                    ));
                }
            }
        }
    }

    /// Splits the frame at the start of `input` from what follows it, by
    /// the frame's header and block lengths, checking that it is complete
    /// (up to its end mark and content checksum). Only standard frames:
    /// legacy and skippable ones, which no Kafka client writes, are
    /// refused. Checksums and block contents are the decoder's to check.
    fn split_frame(input: &[u8]) -> Result<(&[u8], &[u8]), &'static str> {
        let Some((magic, after)) = input.split_first_chunk::<4>() else {
            return Err("truncated frame header");
        };
        if u32::from_le_bytes(*magic) != MAGIC {
            return Err("not an lz4 frame");
        }
        let Some(&flg) = after.first() else {
            return Err("truncated frame header");
        };
        let mut descriptor = 3; // FLG, BD, header checksum
        if flg & FLG_CONTENT_SIZE != 0 {
            descriptor += 8;
        }
        if flg & FLG_DICT_ID != 0 {
            descriptor += 4;
        }
        let Some(mut rest) = after.get(descriptor..) else {
            return Err("truncated frame header");
        };
        let checksum_len = if flg & FLG_BLOCK_CHECKSUMS != 0 { 4 } else { 0 };
        loop {
            let Some((word, after)) = rest.split_first_chunk::<4>() else {
                return Err("truncated block");
            };
            let word = u32::from_le_bytes(*word);
            rest = after;
            if word == 0 {
                break; // the end mark
            }
            let size = (word & !BLOCK_UNCOMPRESSED) as usize;
            if size == 0 {
                // liblz4 and Kafka's Java reader take it for the end mark,
                // `lz4_flex` for an empty block: refused, so that all agree.
                return Err("empty uncompressed block");
            }
            let Some(after) = rest.get(size + checksum_len..) else {
                return Err("truncated block");
            };
            rest = after;
        }
        if flg & FLG_CONTENT_CHECKSUM != 0 {
            let Some(after) = rest.get(4..) else {
                return Err("truncated content checksum");
            };
            rest = after;
        }
        Ok(input.split_at(input.len() - rest.len()))
    }

    pub(super) fn compress(input: &[u8], out: &mut BytesMut) -> Result<(), CodecError> {
        let info = FrameInfo::new()
            .block_size(BlockSize::Max64KB)
            .block_mode(BlockMode::Independent);
        let mut encoder = FrameEncoder::with_frame_info(info, out.writer());
        encoder
            .write_all(input)
            .map_err(|e| internal(Codec::Lz4, e))?;
        encoder
            .finish()
            .map(drop)
            .map_err(|e| internal(Codec::Lz4, e))
    }
}

/// zstd: the `zstd` crate (libzstd).
#[cfg(feature = "zstd")]
mod zstandard {
    use bytes::BytesMut;

    use super::{Codec, CodecError, bounded, internal};

    /// The compression level written: Kafka's default.
    const LEVEL: i32 = 3;
    /// log2 of the largest window read: libzstd's default limit, and what
    /// Kafka's highest level (22) writes.
    pub(super) const WINDOW_LOG_MAX: u32 = 27;

    pub(super) fn decompress(
        input: &[u8],
        limit: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        let mut decoder = ::zstd::stream::read::Decoder::with_buffer(input)
            .map_err(|e| internal(Codec::Zstd, e))?;
        decoder
            .window_log_max(WINDOW_LOG_MAX)
            .map_err(|e| internal(Codec::Zstd, e))?;
        bounded::read(Codec::Zstd, decoder, input.len(), limit, out)
    }

    pub(super) fn compress(input: &[u8], out: &mut BytesMut) -> Result<(), CodecError> {
        let at = out.len();
        out.resize(at + ::zstd::zstd_safe::compress_bound(input.len()), 0);
        let n = ::zstd::bulk::compress_to_buffer(input, &mut out[at..], LEVEL)
            .map_err(|e| internal(Codec::Zstd, e))?;
        out.truncate(at + n);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Tests of the codecs: round trips, the limit, damaged and truncated
    //! input, decompression bombs (and the peak memory they cost, measured in
    //! a child process), and fixtures written by other implementations
    //! (`tests/data/codec/`, see its generators).
    #![allow(clippy::unwrap_used)]

    use std::fmt::Write as _;
    #[allow(unused_imports)]
    use std::io::Write as _;

    use bytes::BytesMut;

    use super::{ATTR_CODEC_MASK, Codec, CodecError, compress, decompress};

    const KIB: usize = 1024;
    const MIB: usize = 1024 * 1024;

    /// Every codec, compiled in or not.
    const ALL: [Codec; 5] = [
        Codec::None,
        Codec::Gzip,
        Codec::Snappy,
        Codec::Lz4,
        Codec::Zstd,
    ];

    /// The codecs this build supports.
    fn supported() -> Vec<Codec> {
        ALL.into_iter().filter(|c| c.is_supported()).collect()
    }

    /// The supported codecs that compress.
    fn compressing() -> Vec<Codec> {
        supported()
            .into_iter()
            .filter(|&c| c != Codec::None)
            .collect()
    }

    fn comp(codec: Codec, input: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        compress(codec, input, &mut out).unwrap();
        out.to_vec()
    }

    fn decomp(codec: Codec, input: &[u8], limit: usize) -> Result<Vec<u8>, CodecError> {
        let mut out = Vec::new();
        decompress(codec, input, limit, &mut out).map(|()| out)
    }

    /// `lines` JSON order events, one per line: the text of the fixtures too
    /// (`tests/data/codec/gen_fixtures.py` writes the same bytes).
    fn orders_json(lines: usize) -> Vec<u8> {
        let mut s = String::new();
        for n in 0..lines as u64 {
            let cents = (n * 7919) % 100_000;
            writeln!(
                s,
                r#"{{"event":"ORDER_PLACED","orderId":{},"amount":{}.{:02},"timestamp":{}}}"#,
                100_000 + n,
                cents / 100,
                cents % 100,
                1_700_000_000_000 + n * 250
            )
            .unwrap();
        }
        s.into_bytes()
    }

    /// At least `len` bytes of order events, cut to `len`.
    fn orders_bytes(len: usize) -> Vec<u8> {
        let mut text = orders_json(len / 80 + 1);
        text.truncate(len);
        text
    }

    /// `len` pseudo-random bytes (xorshift), incompressible.
    fn noise(len: usize) -> Vec<u8> {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn ids_names_and_mask_are_kafkas() {
        let expected = [
            (0, Codec::None, "none"),
            (1, Codec::Gzip, "gzip"),
            (2, Codec::Snappy, "snappy"),
            (3, Codec::Lz4, "lz4"),
            (4, Codec::Zstd, "zstd"),
        ];
        for (id, codec, name) in expected {
            assert_eq!(Codec::from_id(id), Some(codec));
            assert_eq!(codec.id(), id);
            assert_eq!(codec.name(), name);
            assert_eq!(codec.id() & ATTR_CODEC_MASK, codec.id());
        }
        for id in [5, 6, 7, 8, 0x10, u16::MAX] {
            assert_eq!(Codec::from_id(id), None, "{id}");
        }
        assert_eq!(Codec::MAX_KNOWN_ID, 4);
        assert_eq!(ATTR_CODEC_MASK, 0b111);
        assert_eq!(Codec::default(), Codec::None);
    }

    #[test]
    fn every_codec_round_trips_empty_small_and_large_inputs() {
        let inputs = [
            Vec::new(),
            b"x".to_vec(),
            b"hello, hello, hello".to_vec(),
            orders_bytes(MIB),
            noise(MIB),
        ];
        for codec in supported() {
            for input in &inputs {
                let compressed = comp(codec, input);
                let back = decomp(codec, &compressed, input.len()).unwrap();
                assert!(back == *input, "{codec:?}, {} bytes", input.len());
            }
        }
    }

    #[test]
    fn order_events_compress_well() {
        let text = orders_bytes(MIB);
        for codec in compressing() {
            let compressed = comp(codec, &text);
            assert!(
                compressed.len() * 3 < text.len(),
                "{codec:?}: {} of {}",
                compressed.len(),
                text.len()
            );
            assert!(decomp(codec, &compressed, text.len()).unwrap() == text);
        }
    }

    #[test]
    fn the_limit_is_exact_and_a_failure_leaves_out_as_it_was() {
        for len in [1, 1000, 100 * KIB + 7] {
            let text = orders_bytes(len);
            for codec in supported() {
                let compressed = comp(codec, &text);
                let mut out = b"kept".to_vec();
                decompress(codec, &compressed, len, &mut out).unwrap();
                assert_eq!(&out[..4], b"kept");
                assert!(out[4..] == text[..], "{codec:?}");

                let mut out = b"kept".to_vec();
                assert_eq!(
                    decompress(codec, &compressed, len - 1, &mut out),
                    Err(CodecError::TooLarge { limit: len - 1 }),
                    "{codec:?}, {len}"
                );
                assert_eq!(out, b"kept");
            }
        }
    }

    #[test]
    fn empty_input_is_malformed_but_for_none() {
        assert_eq!(decomp(Codec::None, b"", 0), Ok(Vec::new()));
        for codec in compressing() {
            assert!(
                matches!(decomp(codec, b"", MIB), Err(CodecError::Malformed { codec: c, .. }) if c == codec),
                "{codec:?}"
            );
        }
    }

    /// Decodes `input`, asserting that it fails as malformed or too large, or
    /// gives at most `limit` bytes (returned); never a panic or another error.
    fn decodes_or_refuses(codec: Codec, input: &[u8], limit: usize) -> Option<Vec<u8>> {
        match decomp(codec, input, limit) {
            Ok(out) => {
                assert!(out.len() <= limit, "{codec:?}");
                Some(out)
            }
            Err(CodecError::Malformed { codec: c, reason }) => {
                assert_eq!(c, codec);
                assert!(
                    !reason.is_empty() && reason.chars().count() <= 100,
                    "{reason}"
                );
                None
            }
            Err(CodecError::TooLarge { limit: l }) => {
                assert_eq!(l, limit);
                None
            }
            Err(e) => panic!("{codec:?}: {e:?}"),
        }
    }

    #[test]
    fn every_truncation_is_refused() {
        // Xerial snappy has no end marker: a cut at a block boundary is a
        // valid, shorter stream. Everything else must be refused.
        let small = orders_json(30);
        let large = orders_bytes(200 * KIB);
        for codec in compressing() {
            for (text, every) in [(&small, 1), (&large, 97)] {
                let compressed = comp(codec, text);
                let cuts = (0..compressed.len())
                    .step_by(every)
                    .chain(compressed.len().saturating_sub(40)..compressed.len());
                for cut in cuts {
                    match decomp(codec, &compressed[..cut], text.len()) {
                        Err(CodecError::Malformed { .. }) => {}
                        Ok(out) if codec == Codec::Snappy => {
                            assert!(out.len() < text.len() && text.starts_with(&out));
                            assert_eq!(out.len() % (32 * KIB), 0, "cut between xerial blocks");
                        }
                        other => panic!("{codec:?} cut at {cut}: {other:?}"),
                    }
                }
            }
        }
    }

    #[test]
    fn bit_flips_never_panic_and_gzip_catches_them() {
        let text = orders_json(20);
        for codec in compressing() {
            let compressed = comp(codec, &text);
            let mut caught = 0;
            let mut flips = 0;
            for bit in 0..compressed.len() * 8 {
                let mut damaged = compressed.clone();
                damaged[bit / 8] ^= 1 << (bit % 8);
                // The true length as the limit, or room to grow past it.
                let limit = text.len() * if bit % 2 == 0 { 1 } else { 4 };
                flips += 1;
                match decodes_or_refuses(codec, &damaged, limit) {
                    None => caught += 1,
                    // gzip's CRC-32 of the output lets no damage through: a
                    // flip it misses (in MTIME, XFL, OS or the last byte's
                    // padding bits) changes nothing.
                    Some(out) if codec == Codec::Gzip => {
                        assert!(out == text, "gzip let a flip of bit {bit} through");
                    }
                    Some(_) => {}
                }
            }
            assert!(caught > 0, "{codec:?}: no flip of {flips} caught");
        }
    }

    /// Flushes write empty or short blocks in the middle of a stream
    /// (gzip's sync flush is an empty stored block): they end nothing.
    #[test]
    fn flushed_streams_decode_whole() {
        #[allow(unused_variables)]
        let (a, b) = (orders_json(10), orders_json(20));
        #[cfg(feature = "gzip")]
        {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(&a).unwrap();
            e.flush().unwrap();
            e.flush().unwrap();
            e.write_all(&b).unwrap();
            let gz = e.finish().unwrap();
            assert_eq!(decomp(Codec::Gzip, &gz, MIB), Ok([&a[..], &b[..]].concat()));
        }
        #[cfg(feature = "zstd")]
        {
            let mut e = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
            e.write_all(&a).unwrap();
            e.flush().unwrap();
            e.flush().unwrap();
            e.write_all(&b).unwrap();
            let zs = e.finish().unwrap();
            assert_eq!(decomp(Codec::Zstd, &zs, MIB), Ok([&a[..], &b[..]].concat()));
        }
    }

    #[test]
    fn trailing_bytes_are_malformed() {
        let text = orders_json(10);
        for codec in compressing() {
            let mut compressed = comp(codec, &text);
            compressed.extend_from_slice(b"junk");
            assert!(
                matches!(
                    decomp(codec, &compressed, MIB),
                    Err(CodecError::Malformed { .. })
                ),
                "{codec:?}"
            );
        }
    }

    #[test]
    fn concatenated_streams_decode_to_the_concatenation() {
        let (a, b) = (orders_json(10), orders_json(40));
        for codec in compressing() {
            let mut both = comp(codec, &a);
            both.extend_from_slice(&comp(codec, &b));
            let out = decomp(codec, &both, MIB).unwrap();
            assert!(out == [a.clone(), b.clone()].concat(), "{codec:?}");
        }
    }

    #[test]
    fn errors_display_in_a_few_words() {
        assert_eq!(
            CodecError::TooLarge { limit: 10 }.to_string(),
            "decompressed data exceeds the limit of 10 bytes"
        );
        assert_eq!(
            CodecError::Malformed {
                codec: Codec::Lz4,
                reason: "truncated block".into()
            }
            .to_string(),
            "malformed lz4 data: truncated block"
        );
        assert_eq!(
            CodecError::Unsupported { codec: Codec::Zstd }.to_string(),
            "zstd compression is not supported by this build (cargo feature `zstd` is off)"
        );
        let long = super::short("x".repeat(500));
        assert_eq!(long.chars().count(), super::MAX_REASON_CHARS + 1);
    }

    #[test]
    fn a_codec_without_its_feature_is_unsupported() {
        for codec in ALL {
            if codec.is_supported() {
                continue;
            }
            let mut out = BytesMut::new();
            assert_eq!(
                compress(codec, b"abc", &mut out),
                Err(CodecError::Unsupported { codec })
            );
            assert_eq!(
                decomp(codec, b"abc", MIB),
                Err(CodecError::Unsupported { codec })
            );
        }
        assert_eq!(
            supported().len(),
            1 + [
                cfg!(feature = "gzip"),
                cfg!(feature = "snappy"),
                cfg!(feature = "lz4"),
                cfg!(feature = "zstd")
            ]
            .iter()
            .filter(|&&on| on)
            .count()
        );
    }

    /// The fixtures of `tests/data/codec/` (see `gen_fixtures.py` and
    /// `GenFixtures.java` there): the same 1000 order events compressed by the
    /// Kafka Java client, kafka-python, liblz4 and the reference CLI tools.
    #[test]
    fn fixtures_from_other_implementations_decode() {
        macro_rules! fixture {
            ($codec:expr, $feature:literal, $file:literal) => {
                #[cfg(feature = $feature)]
                {
                    let bytes = include_bytes!(concat!("../tests/data/codec/", $file));
                    let text = orders_json(1000);
                    assert!(decomp($codec, bytes, text.len()) == Ok(text.clone()), $file);
                    assert_eq!(
                        decomp($codec, bytes, text.len() - 1),
                        Err(CodecError::TooLarge {
                            limit: text.len() - 1
                        }),
                        $file
                    );
                }
            };
        }
        fixture!(Codec::Gzip, "gzip", "java-gzip.bin");
        fixture!(Codec::Gzip, "gzip", "python-gzip.bin");
        fixture!(Codec::Snappy, "snappy", "java-snappy.bin");
        fixture!(Codec::Snappy, "snappy", "python-snappy.bin");
        fixture!(Codec::Snappy, "snappy", "python-snappy-raw.bin");
        fixture!(Codec::Lz4, "lz4", "java-lz4.bin");
        fixture!(Codec::Lz4, "lz4", "python-lz4.bin");
        fixture!(Codec::Lz4, "lz4", "python-lz4-linked.bin");
        fixture!(Codec::Lz4, "lz4", "cli-lz4.bin");
        fixture!(Codec::Zstd, "zstd", "java-zstd.bin");
        fixture!(Codec::Zstd, "zstd", "python-zstd.bin");
        fixture!(Codec::Zstd, "zstd", "cli-zstd.bin");
    }

    /// What we write is what Kafka's Java client writes, header by header.
    #[test]
    fn the_compressed_forms_are_kafkas() {
        #[cfg(feature = "gzip")]
        {
            let gz = comp(Codec::Gzip, b"abc");
            assert_eq!(&gz[..4], &[0x1f, 0x8b, 8, 0], "gzip, deflate, no flags");
        }
        #[cfg(feature = "snappy")]
        {
            use snappy::xerial_block_sizes;
            let java = include_bytes!("../tests/data/codec/java-snappy.bin");
            let ours = comp(Codec::Snappy, &orders_json(1000));
            // snappy-java's header and block sizes (the raw snappy inside may
            // differ from one encoder to the next).
            assert_eq!(&ours[..16], &java[..16]);
            assert_eq!(xerial_block_sizes(&ours), xerial_block_sizes(java));
        }
        #[cfg(feature = "lz4")]
        {
            let lz = comp(Codec::Lz4, &orders_bytes(100 * KIB));
            assert_eq!(&lz[..4], &[0x04, 0x22, 0x4d, 0x18], "lz4 frame magic");
            assert_eq!(
                lz[4], 0x60,
                "FLG: version 1, independent blocks, no checksums, no size"
            );
            assert_eq!(lz[5], 0x40, "BD: 64 KiB blocks");
            let java = include_bytes!("../tests/data/codec/java-lz4.bin");
            assert_eq!(&java[4..7], &lz[4..7], "the Java client's descriptor");
            assert_eq!(&lz[lz.len() - 4..], &[0, 0, 0, 0], "end mark, no checksum");
        }
        #[cfg(feature = "zstd")]
        {
            let text = orders_bytes(100 * KIB);
            let zs = comp(Codec::Zstd, &text);
            assert_eq!(&zs[..4], &[0x28, 0xb5, 0x2f, 0xfd], "zstd magic");
            let size = zstd::zstd_safe::get_frame_content_size(&zs).unwrap();
            assert_eq!(size, Some(text.len() as u64), "content size written");
        }
    }

    #[cfg(feature = "snappy")]
    #[expect(
        clippy::big_endian_bytes,
        reason = "the xerial framing's integers are big-endian"
    )]
    mod snappy {
        //! The two snappy forms and the xerial framing's edges.
        use super::super::snappy::{XERIAL_BLOCK, XERIAL_HEADER_LEN, XERIAL_MAGIC};
        use super::*;

        /// Raw snappy bytes of a stream that decodes to `len` (≥ 1) zeros,
        /// crafted (one literal, then 3-byte copies from 1 back) so that no
        /// big buffer is needed to make it.
        pub(in super::super) fn raw_zeros(len: usize) -> Vec<u8> {
            let mut out = Vec::with_capacity(10 + 3 * (len / 64 + 1));
            let mut n = len as u64;
            while n >= 0x80 {
                out.push((n as u8) | 0x80);
                n >>= 7;
            }
            out.push(n as u8);
            out.extend_from_slice(&[0x00, 0x00]); // literal of 1 byte: 0
            let mut left = len - 1;
            while left > 0 {
                let copy = left.min(64);
                out.extend_from_slice(&[((copy as u8 - 1) << 2) | 2, 1, 0]);
                left -= copy;
            }
            out
        }

        /// The decompressed size of each block of a xerial stream.
        pub(in super::super) fn xerial_block_sizes(xerial: &[u8]) -> Vec<usize> {
            let mut rest = &xerial[XERIAL_HEADER_LEN..];
            let mut sizes = Vec::new();
            while !rest.is_empty() {
                let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
                sizes.push(snap::raw::decompress_len(&rest[4..4 + len]).unwrap());
                rest = &rest[4 + len..];
            }
            sizes
        }

        /// A xerial stream of `blocks` blocks of 32 KiB of zeros.
        pub(in super::super) fn xerial_zeros(blocks: usize) -> Vec<u8> {
            let one = comp(Codec::Snappy, &vec![0; XERIAL_BLOCK]);
            let block = &one[XERIAL_HEADER_LEN..];
            let mut out = one[..XERIAL_HEADER_LEN].to_vec();
            for _ in 0..blocks {
                out.extend_from_slice(block);
            }
            out
        }

        #[test]
        fn xerial_and_raw_both_decode() {
            let text = orders_bytes(100 * KIB);
            let xerial = comp(Codec::Snappy, &text);
            assert_eq!(&xerial[..8], &XERIAL_MAGIC);
            assert_eq!(&xerial[8..16], &[0, 0, 0, 1, 0, 0, 0, 1]);
            let raw = snap::raw::Encoder::new().compress_vec(&text).unwrap();
            assert!(decomp(Codec::Snappy, &xerial, text.len()).unwrap() == text);
            assert!(decomp(Codec::Snappy, &raw, text.len()).unwrap() == text);
            assert_eq!(
                decomp(Codec::Snappy, &raw, text.len() - 1),
                Err(CodecError::TooLarge {
                    limit: text.len() - 1
                })
            );
        }

        #[test]
        fn xerial_blocks_are_32_kib_of_input_each() {
            let text = orders_bytes(100 * KIB);
            let xerial = comp(Codec::Snappy, &text);
            assert_eq!(
                xerial_block_sizes(&xerial),
                [XERIAL_BLOCK, XERIAL_BLOCK, XERIAL_BLOCK, 4 * KIB]
            );
        }

        #[test]
        fn xerial_headers_are_checked_as_snappy_java_does() {
            let text = orders_json(5);
            let good = comp(Codec::Snappy, &text);
            // A header alone is an empty stream.
            assert_eq!(decomp(Codec::Snappy, &good[..16], MIB), Ok(Vec::new()));
            // Versions written little-endian (as some producers do) still read.
            let mut le = good.clone();
            le[8..16].copy_from_slice(&[1, 0, 0, 0, 1, 0, 0, 0]);
            assert_eq!(decomp(Codec::Snappy, &le, MIB), Ok(text));
            // Version 0 is refused, like a torn header.
            let mut zero = good.clone();
            zero[8..12].copy_from_slice(&[0; 4]);
            for bad in [&zero[..], &good[..12]] {
                assert!(matches!(
                    decomp(Codec::Snappy, bad, MIB),
                    Err(CodecError::Malformed { .. })
                ));
            }
        }

        #[test]
        fn lying_lengths_are_refused_before_allocating() {
            let limit = MIB;
            // A raw block declaring 4 GiB from 6 bytes.
            let huge = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
            // A raw block declaring 1 MiB + 1 (over the limit), truthfully.
            let over = raw_zeros(MIB + 1);
            // A xerial block whose length says 2 GiB.
            let mut xerial = comp(Codec::Snappy, b"abc");
            xerial[16..20].copy_from_slice(&0x7fff_ffffu32.to_be_bytes());
            for (input, expected) in [
                (&huge[..], "Malformed"),
                (&over[..], "TooLarge"),
                (&xerial[..], "Malformed"),
            ] {
                let mut out = Vec::new();
                let err = decompress(Codec::Snappy, input, limit, &mut out).unwrap_err();
                assert!(format!("{err:?}").starts_with(expected), "{err:?}");
                assert_eq!(out.capacity(), 0, "nothing allocated for {err:?}");
            }
            assert!(decomp(Codec::Snappy, &over, MIB + 1).unwrap() == vec![0; MIB + 1]);
        }
    }

    #[cfg(feature = "lz4")]
    #[test]
    fn lz4_blocks_that_decode_to_nothing_do_not_end_the_frame() {
        let descriptor = &comp(Codec::Lz4, b"")[..7]; // magic, FLG, BD, checksum
        let stored = |data: &[u8]| {
            let mut block = (0x8000_0000 | data.len() as u32).to_le_bytes().to_vec();
            block.extend_from_slice(data);
            block
        };
        let empty_compressed = [1, 0, 0, 0, 0x00]; // one token: no literal, no match
        let end = [0, 0, 0, 0];
        let frame = [
            descriptor,
            &stored(b"abc"),
            &empty_compressed,
            &stored(b"def"),
            &end,
        ]
        .concat();
        assert_eq!(decomp(Codec::Lz4, &frame, MIB), Ok(b"abcdef".to_vec()));
        // An uncompressed block of no bytes is an end mark to some readers.
        let ambiguous = [
            descriptor,
            &stored(b"abc"),
            &stored(b""),
            &stored(b"def"),
            &end,
        ]
        .concat();
        assert!(matches!(
            decomp(Codec::Lz4, &ambiguous, MIB),
            Err(CodecError::Malformed { .. })
        ));
    }

    #[cfg(feature = "lz4")]
    #[test]
    fn lz4_legacy_and_skippable_frames_are_refused() {
        let legacy = [0x02, 0x21, 0x4c, 0x18, 4, 0, 0, 0, 0x30, b'a', b'b', b'c'];
        let skippable = [0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0];
        for input in [&legacy[..], &skippable[..]] {
            assert!(matches!(
                decomp(Codec::Lz4, input, MIB),
                Err(CodecError::Malformed { .. })
            ));
        }
    }

    /// Decompression bombs: 64 MiB of zeros, compressed by each codec in every
    /// way that claims the most, made without a 64 MiB buffer.
    mod bombs {
        use super::*;

        /// What a bomb expands to.
        pub(super) const BOMB: usize = 64 * MIB;
        /// The limit the bombs are decoded under.
        pub(super) const LIMIT: usize = MIB;

        /// `(name, codec, compressed)` for every bomb this build can make,
        /// made once per process (it takes seconds in a debug build).
        pub(super) fn all() -> &'static [(&'static str, Codec, Vec<u8>)] {
            static BOMBS: std::sync::OnceLock<Vec<(&'static str, Codec, Vec<u8>)>> =
                std::sync::OnceLock::new();
            BOMBS.get_or_init(make)
        }

        fn make() -> Vec<(&'static str, Codec, Vec<u8>)> {
            #[allow(unused_mut)]
            let mut bombs = vec![("none", Codec::None, vec![0; LIMIT + 1])];
            #[cfg(feature = "gzip")]
            bombs.push(("gzip", Codec::Gzip, {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                feed(&mut e);
                e.finish().unwrap()
            }));
            #[cfg(feature = "snappy")]
            {
                let blocks = BOMB / crate::codec::snappy::XERIAL_BLOCK;
                bombs.push((
                    "snappy xerial",
                    Codec::Snappy,
                    super::snappy::xerial_zeros(blocks),
                ));
                bombs.push(("snappy raw", Codec::Snappy, super::snappy::raw_zeros(BOMB)));
            }
            #[cfg(feature = "lz4")]
            {
                use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
                let frame = |info: FrameInfo| {
                    let mut e = FrameEncoder::with_frame_info(info, Vec::new());
                    feed(&mut e);
                    e.finish().unwrap()
                };
                bombs.push(("lz4", Codec::Lz4, frame(FrameInfo::new())));
                // The largest blocks and a content size that claims it all.
                let claims = FrameInfo::new()
                    .block_size(BlockSize::Max4MB)
                    .block_mode(BlockMode::Linked)
                    .content_size(Some(BOMB as u64));
                bombs.push(("lz4 4 MiB blocks, sized", Codec::Lz4, frame(claims)));
            }
            #[cfg(feature = "zstd")]
            {
                let frame = |sized: bool| {
                    let mut e = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
                    if sized {
                        // A content size in the header, and the largest window.
                        e.set_pledged_src_size(Some(BOMB as u64)).unwrap();
                        e.include_contentsize(true).unwrap();
                        e.window_log(super::super::zstandard::WINDOW_LOG_MAX)
                            .unwrap();
                    }
                    feed(&mut e);
                    e.finish().unwrap()
                };
                bombs.push(("zstd", Codec::Zstd, frame(false)));
                bombs.push(("zstd sized, 128 MiB window", Codec::Zstd, frame(true)));
            }
            bombs
        }

        /// Writes `BOMB` zeros to `w`, 64 KiB at a time.
        #[allow(dead_code)]
        fn feed(w: &mut impl std::io::Write) {
            let zeros = vec![0; 64 * KIB];
            for _ in 0..BOMB / zeros.len() {
                w.write_all(&zeros).unwrap();
            }
        }

        #[test]
        fn every_bomb_is_too_large_and_costs_little() {
            for &(name, codec, ref bomb) in all() {
                let mut out = Vec::new();
                assert_eq!(
                    decompress(codec, bomb, LIMIT, &mut out),
                    Err(CodecError::TooLarge { limit: LIMIT }),
                    "{name}"
                );
                assert!(out.is_empty(), "{name}");
                assert!(
                    out.capacity() <= 2 * LIMIT + 64 * KIB,
                    "{name}: out grew to {}",
                    out.capacity()
                );
            }
        }

        /// The bombs really are 64 MiB (one at a time, under a limit of 64 MiB).
        #[test]
        fn every_bomb_is_what_it_claims() {
            for &(name, codec, ref bomb) in all() {
                if codec == Codec::None {
                    continue;
                }
                let out = decomp(codec, bomb, BOMB).unwrap();
                assert!(out.len() == BOMB && out.iter().all(|&b| b == 0), "{name}");
                drop(out);
                assert_eq!(
                    decomp(codec, bomb, BOMB - 1),
                    Err(CodecError::TooLarge { limit: BOMB - 1 }),
                    "{name}"
                );
            }
        }
    }

    /// Runs [`bomb_peak_memory_child`] in a child process of this test binary,
    /// alone, so that its measure of the peak resident set is its own. glibc's
    /// malloc is told to give freed memory back at once (fixed thresholds), so
    /// that a decoder cannot hide in memory freed earlier that is still
    /// resident.
    #[cfg(target_os = "linux")]
    #[test]
    fn bombs_keep_the_peak_memory_small() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "codec::tests::bomb_peak_memory_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("MALLOC_MMAP_THRESHOLD_", "65536")
            .env("MALLOC_TRIM_THRESHOLD_", "65536")
            .env("MALLOC_TOP_PAD_", "0")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("1 passed"), "the child ran no test:\n{text}");
    }

    /// The peak resident set (`VmHWM`) of this process, in bytes.
    #[cfg(target_os = "linux")]
    fn peak_rss() -> usize {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        let kib: usize = line
            .trim_start_matches("VmHWM:")
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .unwrap();
        kib * KIB
    }

    /// Resets the peak resident set to the current one.
    #[cfg(target_os = "linux")]
    fn reset_peak_rss() {
        std::fs::write("/proc/self/clear_refs", "5").unwrap();
    }

    /// Decoding any bomb under a 1 MiB limit raises the peak resident set by
    /// little: the output's 1–2 MiB and the codec's working memory (most for
    /// lz4's 4 MiB blocks: its buffers of up to three blocks). Run by
    /// [`bombs_keep_the_peak_memory_small`]; checks its own instrument by
    /// touching 32 MiB at the end.
    #[cfg(target_os = "linux")]
    #[test]
    #[ignore = "run alone in a child process by bombs_keep_the_peak_memory_small"]
    fn bomb_peak_memory_child() {
        const ALLOWED: usize = 16 * MIB;
        let mut report = String::new();
        for &(name, codec, ref bomb) in bombs::all() {
            reset_peak_rss();
            let before = peak_rss();
            let mut out = Vec::new();
            let result = decompress(codec, bomb, bombs::LIMIT, &mut out);
            drop(out);
            let grew = peak_rss().saturating_sub(before);
            assert_eq!(
                result,
                Err(CodecError::TooLarge {
                    limit: bombs::LIMIT
                })
            );
            writeln!(report, "{name}: peak +{} KiB", grew / KIB).unwrap();
            assert!(
                grew <= ALLOWED,
                "{name}: peak grew by {grew} bytes\n{report}"
            );
        }
        eprint!("{report}");
        reset_peak_rss();
        let before = peak_rss();
        let touched = vec![1u8; 32 * MIB];
        assert!(
            peak_rss() - before >= 30 * MIB,
            "VmHWM does not see allocations"
        );
        drop(touched);
    }

    /// Speed and ratio of every codec (zstd at level 3) on ~4 MiB of order
    /// events, whole and in 16 KiB batches. Run in release: `cargo test
    /// --release -p log-format --lib codec_speed -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn codec_speed() {
        let text = orders_bytes(4 * MIB);
        for piece in [text.len(), 16 * KIB] {
            for codec in supported() {
                let rounds = 10;
                let mut compressed = Vec::new();
                let mut buf = BytesMut::new();
                let started = std::time::Instant::now();
                for _ in 0..rounds {
                    compressed.clear();
                    for chunk in text.chunks(piece) {
                        buf.clear();
                        compress(codec, chunk, &mut buf).unwrap();
                        compressed.push(buf.to_vec());
                    }
                }
                let compress_s = started.elapsed().as_secs_f64() / f64::from(rounds);
                let mut out = Vec::with_capacity(text.len());
                let started = std::time::Instant::now();
                for _ in 0..rounds {
                    out.clear();
                    for chunk in &compressed {
                        decompress(codec, chunk, piece, &mut out).unwrap();
                    }
                }
                let decompress_s = started.elapsed().as_secs_f64() / f64::from(rounds);
                assert!(out == text);
                let size: usize = compressed.iter().map(Vec::len).sum();
                let mb = text.len() as f64 / 1e6;
                eprintln!(
                    "{:>6} in {:>7}-byte pieces: ratio {:5.2}, compress {:5.0} MB/s, decompress {:5.0} MB/s",
                    codec.name(),
                    piece,
                    text.len() as f64 / size as f64,
                    mb / compress_s,
                    mb / decompress_s
                );
            }
        }
    }

    /// Writes `ours-{codec}.bin` (the fixtures' text, compressed here) into
    /// `$CODEC_SAMPLES_DIR`, for `gen_fixtures.py check` and `GenFixtures.java
    /// check` to read back with kafka-python and the Kafka Java client.
    #[test]
    #[ignore = "writes files for the interop check scripts"]
    fn export_samples() {
        let dir = std::env::var("CODEC_SAMPLES_DIR").unwrap();
        let text = orders_json(1000);
        for codec in compressing() {
            let path = std::path::Path::new(&dir).join(format!("ours-{}.bin", codec.name()));
            std::fs::write(path, comp(codec, &text)).unwrap();
        }
    }
}
