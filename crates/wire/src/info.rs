//! The type-3/4 reply `{"Paths":[...]}` and the client codec that reads it.

use std::fmt;

use bytes::{Buf, BufMut, BytesMut};
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use tokio_util::codec::{Decoder, Encoder};

use crate::error_reply::{self, ErrorProbe};
use crate::go_json::{key_matches, marshal_into};
use crate::json_scan::{JsonScan, Scan};
use crate::{Limits, RequestFrame, WireError};

/// The info response: shard directories as `db/rp/id`, in metastore order.
///
/// Encoded as Go does: `{"Paths":[...]}` + `\n`, and `{"Paths":null}` + `\n` when empty.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InfoResponse {
    /// Relative shard paths (`db/rp/id`; influx uses the server's OS separator).
    pub paths: Vec<String>,
}

/// One entry of an info response split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardPath<'a> {
    /// Database name.
    pub database: &'a str,
    /// Retention policy name.
    pub retention_policy: &'a str,
    /// Shard id.
    pub shard_id: u64,
}

impl InfoResponse {
    /// Appends the JSON line to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), WireError> {
        #[derive(serde::Serialize)]
        struct Go<'a> {
            #[serde(rename = "Paths")]
            paths: Option<&'a [String]>,
        }
        let mut json = Vec::new();
        let paths = (!self.paths.is_empty()).then_some(self.paths.as_slice());
        marshal_into(&Go { paths }, &mut json).map_err(WireError::BadInfoJson)?;
        json.push(b'\n');
        dst.put_slice(&json);
        Ok(())
    }

    /// Decodes one JSON object (Go semantics: case-insensitive key, `null` = empty).
    pub fn from_json(json: &[u8]) -> Result<InfoResponse, WireError> {
        serde_json::from_slice::<GoInfo>(json)
            .map(|g| g.0)
            .map_err(WireError::BadInfoJson)
    }

    /// Splits every path into db / rp / id the way Go clients do: on `/` (or `\` from a
    /// Windows server), exactly three parts, numeric id. `None` for a malformed entry.
    pub fn shard_paths(&self) -> impl Iterator<Item = Option<ShardPath<'_>>> {
        self.paths.iter().map(|p| {
            let sep = if p.contains('/') { '/' } else { '\\' };
            let mut it = p.split(sep);
            let (db, rp, id) = (it.next()?, it.next()?, it.next()?);
            if it.next().is_some() {
                return None;
            }
            Some(ShardPath {
                database: db,
                retention_policy: rp,
                shard_id: id.parse().ok()?,
            })
        })
    }
}

struct GoInfo(InfoResponse);

impl<'de> de::Deserialize<'de> for GoInfo {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = GoInfo;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a snapshotter Response object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<GoInfo, A::Error> {
                let mut r = InfoResponse::default();
                while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key_matches(&k, "Paths") {
                        if let Some(p) = map.next_value::<Option<Vec<String>>>()? {
                            r.paths = p;
                        }
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(GoInfo(r))
            }
        }
        d.deserialize_map(V)
    }
}

/// Client codec for a type-3/4 connection: encodes the request, decodes the [`InfoResponse`].
///
/// The reply is bounded by [`Limits::max_info_response`]; whitespace after the object (Go's
/// newline) is accepted, anything else is [`WireError::TrailingBytes`].
#[derive(Debug, Clone, Default)]
pub struct InfoCodec {
    limits: Limits,
    scan: JsonScan,
    done: bool,
}

impl InfoCodec {
    /// A codec with the given limits.
    pub fn new(limits: Limits) -> Self {
        InfoCodec {
            limits,
            scan: JsonScan::default(),
            done: false,
        }
    }
}

impl Decoder for InfoCodec {
    type Item = InfoResponse;
    type Error = WireError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<InfoResponse>, WireError> {
        if self.done {
            let ws = buf
                .iter()
                .take_while(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
                .count();
            buf.advance(ws);
            return error_reply::trailing(buf, "info response").map(|()| None);
        }
        if error_reply::probe(buf, &self.limits)? == ErrorProbe::NeedMore {
            return Ok(None);
        }
        let limit = self.limits.max_info_response;
        let window = &buf[..buf.len().min(limit)];
        match self.scan.scan(window) {
            Scan::Complete(end) => {
                let frame = buf.split_to(end + 1);
                self.done = true;
                let r = InfoResponse::from_json(&frame)?;
                if buf.first() == Some(&b'\n') {
                    buf.advance(1);
                }
                Ok(Some(r))
            }
            Scan::NotObject { found, offset } => Err(WireError::NotAJsonObject { found, offset }),
            Scan::Incomplete if self.scan.scanned() >= limit => {
                Err(WireError::InfoTooLarge { limit })
            }
            Scan::Incomplete => Ok(None),
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<InfoResponse>, WireError> {
        match self.decode(buf)? {
            Some(f) => Ok(Some(f)),
            None if buf.is_empty() => Ok(None),
            None => Err(WireError::Truncated {
                frame: "info response",
                buffered: buf.len(),
            }),
        }
    }
}

impl Encoder<RequestFrame> for InfoCodec {
    type Error = WireError;

    fn encode(&mut self, item: RequestFrame, dst: &mut BytesMut) -> Result<(), WireError> {
        item.encode(dst)
    }
}
