//! Harnesses shared by the cargo-fuzz targets (`fuzz/fuzz_targets/wire_*.rs`,
//! `portable_*.rs`) and the corpus-replay test, so both run exactly the same code.
//!
//! Each function feeds arbitrary bytes to one decoder, split into chunks whose size comes from
//! the first input byte (exercising partial reads), and asserts the decoder's invariants: no
//! panic, limits respected, and anything decoded re-encodes to bytes that decode the same.

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use crate::portable::{Manifest, MetaSummary, PortableData};
use crate::{
    InfoCodec, Limits, MetaBackupCodec, RequestCodec, RequestFrame, ShardIdMapCodec,
    StreamStartCodec, UploadAckCodec, WireError,
};

/// Small limits so the fuzzer reaches every limit branch.
pub fn fuzz_limits() -> Limits {
    Limits {
        max_request_json: 4096,
        max_upload_size: 4096,
        max_info_response: 4096,
        max_id_map_pairs: 256,
        max_meta_blob: 4096,
        max_node_json: 256,
        max_error_reply: 512,
    }
}

/// Feeds `data[1..]` to `codec` in chunks of `data[0] % 16 + 1` bytes, then signals EOF.
/// Returns every frame and the first error.
pub fn feed<D: Decoder<Error = WireError>>(
    codec: &mut D,
    data: &[u8],
) -> (Vec<D::Item>, Option<WireError>, BytesMut) {
    let (chunk, body) = match data.split_first() {
        Some((c, rest)) => (usize::from(*c % 16) + 1, rest),
        None => (1, data),
    };
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in body.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(f)) => out.push(f),
                Ok(None) => break,
                Err(e) => return (out, Some(e), buf),
            }
        }
    }
    loop {
        match codec.decode_eof(&mut buf) {
            Ok(Some(f)) => out.push(f),
            Ok(None) => return (out, None, buf),
            Err(e) => return (out, Some(e), buf),
        }
    }
}

/// Server request decoder: at most one frame; it re-encodes and decodes to itself.
pub fn request(data: &[u8]) {
    let (frames, _, _) = feed(&mut RequestCodec::new(fuzz_limits()), data);
    assert!(frames.len() <= 1, "one request per connection");
    for f in frames {
        check_request_roundtrip(&f);
    }
}

fn check_request_roundtrip(f: &RequestFrame) {
    let mut enc = BytesMut::new();
    if f.encode(&mut enc).is_err() {
        return;
    }
    let mut codec = RequestCodec::new(Limits::default());
    let again = codec.decode_eof(&mut enc);
    assert!(
        matches!(&again, Ok(Some(g)) if g == f),
        "{f:?} -> {again:?}"
    );
}

/// Client meta-backup decoder.
pub fn meta_backup(data: &[u8]) {
    let limits = fuzz_limits();
    let (frames, _, _) = feed(&mut MetaBackupCodec::new(limits), data);
    for f in frames {
        assert!(f.meta.len() as u64 <= limits.max_meta_blob);
        assert!(f.node.len() as u64 <= limits.max_node_json);
        let mut enc = BytesMut::new();
        f.encode(&mut enc);
        let again = MetaBackupCodec::new(limits).decode_eof(&mut enc);
        assert!(matches!(&again, Ok(Some(g)) if *g == f));
    }
}

/// Client info decoder.
pub fn info(data: &[u8]) {
    let (frames, _, _) = feed(&mut InfoCodec::new(fuzz_limits()), data);
    for f in frames {
        let _ = f.shard_paths().count();
        let mut enc = BytesMut::new();
        if f.encode(&mut enc).is_ok() {
            let again = InfoCodec::new(Limits::default()).decode_eof(&mut enc);
            assert!(matches!(&again, Ok(Some(g)) if *g == f));
        }
    }
}

/// Client shard-id map decoder.
pub fn shard_id_map(data: &[u8]) {
    let limits = fuzz_limits();
    let (frames, _, _) = feed(&mut ShardIdMapCodec::new(limits), data);
    for f in frames {
        assert!(f.pairs.len() as u64 <= limits.max_id_map_pairs);
        let mut enc = BytesMut::new();
        f.encode(&mut enc);
        let again = ShardIdMapCodec::new(limits).decode_eof(&mut enc);
        assert!(matches!(&again, Ok(Some(g)) if *g == f));
    }
}

/// Client tar-stream start probe: never consumes data bytes.
pub fn stream_start(data: &[u8]) {
    let mut codec = StreamStartCodec::new(fuzz_limits());
    let body_len = data.len().saturating_sub(1);
    let (frames, err, rest) = feed(&mut codec, data);
    assert!(frames.len() <= 1);
    if !frames.is_empty() && err.is_none() {
        assert_eq!(rest.len(), body_len, "data bytes must stay buffered");
    }
}

/// Client upload-ack decoder.
pub fn upload_ack(data: &[u8]) {
    let (frames, _, _) = feed(&mut UploadAckCodec::new(fuzz_limits()), data);
    assert!(frames.len() <= 1);
}

/// The server codec sends extension frames exactly to clients that opted in.
pub fn server_replies(data: &[u8]) {
    let mut codec = RequestCodec::new(fuzz_limits());
    let (frames, _, _) = feed(&mut codec, data);
    let mut dst = BytesMut::new();
    let r = codec.encode(
        crate::ErrorReply::new(crate::ErrorCode::Internal, "x"),
        &mut dst,
    );
    // A decoded frame decides; after a decode error, whatever the JSON (if it parsed) said.
    let opted = match frames.first() {
        Some(f) => {
            assert_eq!(codec.error_replies(), f.wants_error_replies());
            f.wants_error_replies()
        }
        None => codec.error_replies(),
    };
    assert_eq!(r.is_ok(), opted);
    // Opting in takes a JSON `true` or the 0x87 type byte: without either, only influx's
    // bytes may ever be sent.
    let can_opt_in =
        data.windows(4).any(|w| w == b"true") || data.contains(&crate::SHARD_UPDATE_ACKED);
    assert!(can_opt_in || r.is_err(), "opted in without asking");
}

/// Portable `.meta` wrapper: decodes within limits and re-encodes to a decodable equal value.
pub fn portable_meta(data: &[u8]) {
    if let Ok(p) = PortableData::from_file_bytes(data, &fuzz_limits()) {
        let again = PortableData::from_file_bytes(&p.to_file_bytes(), &Limits::default());
        assert!(matches!(&again, Ok(q) if *q == p));
    }
}

/// Portable `.manifest`: parse, re-encode, parse again to the same value.
pub fn portable_manifest(data: &[u8]) {
    if let Ok(m) = Manifest::from_bytes(data)
        && let Ok(bytes) = m.to_bytes()
    {
        let again = Manifest::from_bytes(&bytes);
        assert!(matches!(&again, Ok(n) if *n == m), "{m:?}");
    }
}

/// `meta.Data` summary decoder over a bounded blob.
pub fn meta_summary(data: &[u8]) {
    if let Ok(s) = MetaSummary::decode_blob(data, &fuzz_limits()) {
        let _ = s.shards().count();
    }
}
