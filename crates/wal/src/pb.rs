//! The protobuf messages etcd 3.4 stores in its WAL, as hand-written prost structs.
//!
//! gogo-protobuf with `nullable=false` writes every scalar field even when it is zero, so
//! scalars are declared proto2 `required` (prost then always encodes them) and `bytes`
//! fields are `Option<Vec<u8>>` (absent vs present-but-empty are different on the wire).

use prost::Message;

/// Record type: opaque metadata given to `create`, repeated at the head of every segment.
pub const METADATA_TYPE: i64 = 1;
/// Record type: one raft entry.
pub const ENTRY_TYPE: i64 = 2;
/// Record type: a raft hard state.
pub const STATE_TYPE: i64 = 3;
/// Record type: running CRC at the start of a segment.
pub const CRC_TYPE: i64 = 4;
/// Record type: a snapshot marker (`walpb.Snapshot`).
pub const SNAPSHOT_TYPE: i64 = 5;

/// `walpb.Record`: the payload of every frame.
#[derive(Clone, PartialEq, Message)]
pub struct Record {
    /// Record type (1..=5).
    #[prost(int64, required, tag = "1")]
    pub r#type: i64,
    /// Running CRC-32C after this record's data.
    #[prost(uint32, required, tag = "2")]
    pub crc: u32,
    /// The payload; `None` for crc records.
    #[prost(bytes = "vec", optional, tag = "3")]
    pub data: Option<Vec<u8>>,
}

/// `walpb.Snapshot`: the raft position of a snapshot (etcd 3.5's `conf_state` is skipped
/// on read and never written).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Message)]
pub struct Snapshot {
    /// Raft index of the snapshot.
    #[prost(uint64, required, tag = "1")]
    pub index: u64,
    /// Raft term of the snapshot.
    #[prost(uint64, required, tag = "2")]
    pub term: u64,
}

impl Snapshot {
    /// A snapshot position.
    pub fn new(index: u64, term: u64) -> Self {
        Snapshot { index, term }
    }
}

/// `raftpb.EntryType` values.
pub mod entry_type {
    /// A normal entry.
    pub const NORMAL: i32 = 0;
    /// A `ConfChange`.
    pub const CONF_CHANGE: i32 = 1;
    /// A `ConfChangeV2`.
    pub const CONF_CHANGE_V2: i32 = 2;
}

/// `raftpb.Entry`.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct Entry {
    /// Entry type (see [`entry_type`]).
    #[prost(int32, required, tag = "1")]
    pub r#type: i32,
    /// Raft term.
    #[prost(uint64, required, tag = "2")]
    pub term: u64,
    /// Raft index.
    #[prost(uint64, required, tag = "3")]
    pub index: u64,
    /// Payload; `None` = field absent (e.g. a new leader's empty entry).
    #[prost(bytes = "vec", optional, tag = "4")]
    pub data: Option<Vec<u8>>,
}

impl Entry {
    /// A normal entry with data.
    pub fn new(index: u64, term: u64, data: impl Into<Vec<u8>>) -> Self {
        Entry {
            r#type: entry_type::NORMAL,
            term,
            index,
            data: Some(data.into()),
        }
    }
}

/// `raftpb.HardState`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Message)]
pub struct HardState {
    /// Current term.
    #[prost(uint64, required, tag = "1")]
    pub term: u64,
    /// Vote in the current term.
    #[prost(uint64, required, tag = "2")]
    pub vote: u64,
    /// Commit index.
    #[prost(uint64, required, tag = "3")]
    pub commit: u64,
}

impl HardState {
    /// A hard state.
    pub fn new(term: u64, vote: u64, commit: u64) -> Self {
        HardState { term, vote, commit }
    }

    /// True when all three fields are zero (raft's `IsEmptyHardState`).
    pub fn is_empty(&self) -> bool {
        self.term == 0 && self.vote == 0 && self.commit == 0
    }
}

/// A borrowed view of a decoded [`Record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordRef<'a> {
    pub(crate) rtype: i64,
    pub(crate) crc: u32,
    pub(crate) data: Option<&'a [u8]>,
}

/// Why record bytes failed to decode, in gogo-protobuf's two classes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProtoError {
    /// A field runs past the end of the buffer (gogo returns `io.ErrUnexpectedEOF`).
    Truncated,
    /// Anything else, with gogo's message text.
    Invalid(String),
}

const INT_OVERFLOW: &str = "proto: integer overflow";
const NEGATIVE_LEN: &str = "proto: negative length found during unmarshaling";

/// Reads a varint the way gogo's generated code does: at most 64 bits of shift, bits past
/// the 64th silently dropped.
fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, ProtoError> {
    let mut v: u64 = 0;
    let mut shift: u32 = 0;
    loop {
        if shift >= 64 {
            return Err(ProtoError::Invalid(INT_OVERFLOW.into()));
        }
        let Some(&b) = buf.get(*pos) else {
            return Err(ProtoError::Truncated);
        };
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(v);
        }
        shift += 7;
    }
}

/// Same as [`varint`] but accumulating into a `u32` (high bits lost, as in Go).
fn varint_u32(buf: &[u8], pos: &mut usize) -> Result<u32, ProtoError> {
    let mut v: u32 = 0;
    let mut shift: u32 = 0;
    loop {
        if shift >= 64 {
            return Err(ProtoError::Invalid(INT_OVERFLOW.into()));
        }
        let Some(&b) = buf.get(*pos) else {
            return Err(ProtoError::Truncated);
        };
        *pos += 1;
        v |= u32::from(b & 0x7f).checked_shl(shift).unwrap_or(0);
        if b < 0x80 {
            return Ok(v);
        }
        shift += 7;
    }
}

/// Returns the end offset of a length-delimited payload starting after its length varint.
fn delimited_end(buf: &[u8], pos: &mut usize) -> Result<usize, ProtoError> {
    let len = varint(buf, pos)? as i64;
    if len < 0 {
        return Err(ProtoError::Invalid(NEGATIVE_LEN.into()));
    }
    let end = usize::try_from(len)
        .ok()
        .and_then(|l| pos.checked_add(l))
        .ok_or(ProtoError::Truncated)?;
    if end > buf.len() {
        return Err(ProtoError::Truncated);
    }
    Ok(end)
}

/// Skips one unknown field whose key has just been read; groups are skipped iteratively.
fn skip_field(buf: &[u8], pos: &mut usize, wire_type: u64) -> Result<(), ProtoError> {
    let mut depth: u64 = 0;
    let mut wt = wire_type;
    loop {
        match wt {
            0 => {
                varint(buf, pos)?;
            }
            1 | 5 => {
                let n = if wt == 1 { 8 } else { 4 };
                *pos = pos.checked_add(n).ok_or(ProtoError::Truncated)?;
                if *pos > buf.len() {
                    return Err(ProtoError::Truncated);
                }
            }
            2 => {
                *pos = delimited_end(buf, pos)?;
            }
            3 => depth += 1,
            4 => depth = depth.saturating_sub(1),
            other => {
                return Err(ProtoError::Invalid(format!(
                    "proto: illegal wireType {other}"
                )));
            }
        }
        if depth == 0 {
            return Ok(());
        }
        wt = varint(buf, pos)? & 7;
    }
}

/// Decodes `walpb.Record` bytes with gogo-protobuf's acceptance rules and error classes:
/// fields in any order, last one wins, unknown fields skipped.
pub(crate) fn decode_record(buf: &[u8]) -> Result<RecordRef<'_>, ProtoError> {
    let mut rec = RecordRef {
        rtype: 0,
        crc: 0,
        data: None,
    };
    let mut pos = 0usize;
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let wire_type = key & 7;
        if wire_type == 4 {
            return Err(ProtoError::Invalid(
                "proto: Record: wiretype end group for non-group".into(),
            ));
        }
        let field = (key >> 3) as i32;
        if field <= 0 {
            return Err(ProtoError::Invalid(format!(
                "proto: Record: illegal tag {field} (wire type {key})"
            )));
        }
        match field {
            1 | 2 if wire_type != 0 => {
                let name = if field == 1 { "Type" } else { "Crc" };
                return Err(ProtoError::Invalid(format!(
                    "proto: wrong wireType = {wire_type} for field {name}"
                )));
            }
            1 => rec.rtype = varint(buf, &mut pos)? as i64,
            2 => rec.crc = varint_u32(buf, &mut pos)?,
            3 => {
                if wire_type != 2 {
                    return Err(ProtoError::Invalid(format!(
                        "proto: wrong wireType = {wire_type} for field Data"
                    )));
                }
                let end = delimited_end(buf, &mut pos)?;
                rec.data = Some(&buf[pos..end]);
                pos = end;
            }
            _ => skip_field(buf, &mut pos, wire_type)?,
        }
    }
    Ok(rec)
}

/// Appends the encoding of a record to `out` (byte-identical to gogo's `Record.Marshal`);
/// the reference the encoder's single-copy path is tested against.
#[cfg(test)]
pub(crate) fn encode_record(out: &mut Vec<u8>, rtype: i64, crc: u32, data: Option<&[u8]>) {
    out.push(0x08);
    prost::encoding::encode_varint(rtype as u64, out);
    out.push(0x10);
    prost::encoding::encode_varint(u64::from(crc), out);
    if let Some(d) = data {
        out.push(0x1a);
        prost::encoding::encode_varint(d.len() as u64, out);
        out.extend_from_slice(d);
    }
}

/// Encoded size of a record (what [`encode_record`] appends).
pub(crate) fn record_len(rtype: i64, crc: u32, data_len: Option<usize>) -> usize {
    let mut n = 2
        + prost::encoding::encoded_len_varint(rtype as u64)
        + prost::encoding::encoded_len_varint(u64::from(crc));
    if let Some(l) = data_len {
        n += 1 + prost::encoding::encoded_len_varint(l as u64) + l;
    }
    n
}

/// Decodes a payload message, mapping failures to [`crate::Error::Payload`].
pub(crate) fn decode_payload<M: Message + Default>(
    what: &'static str,
    data: Option<&[u8]>,
) -> crate::Result<M> {
    M::decode(data.unwrap_or_default()).map_err(|source| crate::Error::Payload { what, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_scalars_are_written() {
        let r = Record {
            r#type: CRC_TYPE,
            crc: 0,
            data: None,
        };
        assert_eq!(r.encode_to_vec(), [0x08, 0x04, 0x10, 0x00]);
        assert_eq!(Snapshot::new(0, 0).encode_to_vec(), [0x08, 0, 0x10, 0]);
        assert_eq!(
            HardState::new(1, 0, 1).encode_to_vec(),
            [8, 1, 0x10, 0, 0x18, 1]
        );
        let e = Entry {
            r#type: 0,
            term: 2,
            index: 2,
            data: None,
        };
        assert_eq!(e.encode_to_vec(), [8, 0, 0x10, 2, 0x18, 2]);
        let e = Entry::new(3, 1, Vec::new());
        assert_eq!(e.encode_to_vec(), [8, 0, 0x10, 1, 0x18, 3, 0x22, 0]);
    }

    #[test]
    fn hand_encoder_matches_prost() {
        for (t, crc, data) in [
            (1i64, 0xd33087b1u32, Some(vec![1u8, 2, 3])),
            (4, 0, None),
            (2, u32::MAX, Some(vec![])),
            (-1, 7, Some(vec![0; 300])),
        ] {
            let mut out = Vec::new();
            encode_record(&mut out, t, crc, data.as_deref());
            let r = Record {
                r#type: t,
                crc,
                data: data.clone(),
            };
            assert_eq!(out, r.encode_to_vec());
            assert_eq!(out.len(), record_len(t, crc, data.as_ref().map(Vec::len)));
            let back = decode_record(&out).expect("decode");
            assert_eq!((back.rtype, back.crc, back.data), (t, crc, data.as_deref()));
        }
    }

    #[test]
    fn gogo_error_classes() {
        assert_eq!(decode_record(&[0x08]), Err(ProtoError::Truncated));
        assert_eq!(decode_record(&[0x1a, 0x05, 1]), Err(ProtoError::Truncated));
        assert_eq!(
            decode_record(&[0x00]),
            Err(ProtoError::Invalid(
                "proto: Record: illegal tag 0 (wire type 0)".into()
            ))
        );
        assert!(matches!(
            decode_record(&[0x0c]),
            Err(ProtoError::Invalid(m)) if m.contains("end group")
        ));
        assert!(matches!(
            decode_record(&[0x0a, 0x00]),
            Err(ProtoError::Invalid(m)) if m.contains("field Type")
        ));
        assert!(matches!(
            decode_record(&[0x27]),
            Err(ProtoError::Invalid(m)) if m.contains("illegal wireType 7")
        ));
        // Unknown fields are skipped, including nested groups.
        let r = decode_record(&[0x08, 0x02, 0x23, 0x2b, 0x2c, 0x24, 0x10, 0x05]).expect("ok");
        assert_eq!((r.rtype, r.crc), (2, 5));
        // A varint longer than ten bytes overflows.
        assert!(matches!(
            decode_record(&[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
            Err(ProtoError::Invalid(m)) if m == INT_OVERFLOW
        ));
    }
}
