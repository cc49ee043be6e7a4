//! Fuzz target: a Kafka request frame, as `log-kafka` decodes it — the
//! header, then the body of any API at any version the codec knows.
//!
//! Decoding arbitrary bytes must return (an error or a value), never
//! panic or abort: in particular an array or string length read off the
//! wire must not make the decoder allocate what the bytes cannot hold
//! (third_party/README.md). Decoded values are not checked further.
#![no_main]

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::Decodable;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let key = i16::from_be_bytes([data[0], data[1]]);
    let version = i16::from_be_bytes([data[2], data[3]]);
    let Ok(api) = ApiKey::try_from(key) else {
        return;
    };
    let range = api.valid_versions();
    if version < range.min || version > range.max {
        return;
    }
    let mut frame = Bytes::copy_from_slice(data);
    if RequestHeader::decode(&mut frame, api.request_header_version(version)).is_err() {
        return;
    }
    let _ = RequestKind::decode(api, &mut frame, version);
});
