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

/// A shard as an info response lists it: `db/rp/id`, parsed by [`ShardPath::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShardPath {
    /// Database name.
    pub db: String,
    /// Retention policy name.
    pub rp: String,
    /// Shard id.
    pub id: u64,
}

impl ShardPath {
    /// Parses one info-response entry: exactly three parts split on `/` or `\` (a Windows
    /// server joins with `\`; influx names never contain either), a non-empty database and
    /// retention policy, and a decimal shard id.
    pub fn parse(path: &str) -> Result<ShardPath, WireError> {
        let bad = |reason: &'static str| WireError::BadShardPath {
            path: path.to_string(),
            reason,
        };
        let mut it = path.split(['/', '\\']);
        let (Some(db), Some(rp), Some(id), None) = (it.next(), it.next(), it.next(), it.next())
        else {
            return Err(bad("expected exactly db/rp/id"));
        };
        if db.is_empty() || rp.is_empty() {
            return Err(bad("empty database or retention policy"));
        }
        let id = id
            .parse::<u64>()
            .map_err(|_| bad("shard id is not a number"))?;
        Ok(ShardPath {
            db: db.to_string(),
            rp: rp.to_string(),
            id,
        })
    }
}

impl fmt::Display for ShardPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.db, self.rp, self.id)
    }
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

    /// Every path parsed with [`ShardPath::parse`], in order.
    pub fn shard_paths(&self) -> impl Iterator<Item = Result<ShardPath, WireError>> + '_ {
        self.paths.iter().map(|p| ShardPath::parse(p))
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

#[cfg(test)]
mod shard_path_tests {
    use super::*;

    #[test]
    fn accepts_db_rp_id_with_either_separator() {
        let p = ShardPath::parse("db1/autogen/3").unwrap();
        assert_eq!((p.db.as_str(), p.rp.as_str(), p.id), ("db1", "autogen", 3));
        assert_eq!(p.to_string(), "db1/autogen/3");
        let w = ShardPath::parse("db\\rp\\7").unwrap();
        assert_eq!((w.db.as_str(), w.rp.as_str(), w.id), ("db", "rp", 7));
        assert_eq!(ShardPath::parse("db/rp\\9").unwrap().id, 9);
    }

    #[test]
    fn refuses_anything_else() {
        for bad in [
            "",
            "db/rp",
            "db/rp/x",
            "a/b/c/1",
            "/rp/1",
            "db//1",
            "db/rp/",
            "db/rp/-1",
            "a\\b/c/1",
            "db/rp/18446744073709551616",
        ] {
            let e = ShardPath::parse(bad).unwrap_err();
            assert!(matches!(e, WireError::BadShardPath { .. }), "{bad:?}: {e}");
            assert!(e.to_string().starts_with(&format!("path {bad:?}: ")), "{e}");
        }
    }

    #[test]
    fn info_response_paths_parse_in_order() {
        let r = InfoResponse {
            paths: vec!["a/b/1".into(), "bad".into()],
        };
        let got: Vec<_> = r.shard_paths().map(|p| p.ok().map(|p| p.id)).collect();
        assert_eq!(got, vec![Some(1), None]);
    }
}
