//! The JSON `Request` object of types 0–6, with Go's exact field names, order and encoding.

use std::fmt;

use serde::Serialize;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};

use crate::go_json::{key_matches, marshal_into};
use crate::{GoTime, RequestType, WireError};

/// JSON key of the opt-in in-band error extension (snapshotd only; influx ignores it).
pub const ERROR_REPLIES_KEY: &str = "SnapshotdErrorReplies";

/// The snapshotter request (Go `snapshotter.Request`).
///
/// Encodes to exactly the bytes a Go client writes: every key present, in declaration order,
/// times in Go's RFC 3339 form. Decoding follows Go `encoding/json`: keys match
/// case-insensitively, unknown keys are ignored, missing keys and `null` leave the zero value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// The JSON `Type` key: a copy of the type byte (servers dispatch on the byte).
    pub type_code: u8,
    /// `BackupDatabase`: source database (types 0, 3, 4, 5, 6).
    pub backup_database: String,
    /// `RestoreDatabase`: new database name (type 6).
    pub restore_database: String,
    /// `BackupRetentionPolicy`: source retention policy (types 0, 4, 5, 6).
    pub backup_retention_policy: String,
    /// `RestoreRetentionPolicy`: new retention policy name (type 6).
    pub restore_retention_policy: String,
    /// `ShardID`: shard to back up or export (types 0, 5).
    pub shard_id: u64,
    /// `Since`: type 0 sends only files modified strictly after this instant.
    pub since: GoTime,
    /// `ExportStart`: type 5 lower bound.
    pub export_start: GoTime,
    /// `ExportEnd`: type 5 upper bound.
    pub export_end: GoTime,
    /// `UploadSize`: type 6 payload length (a signed 64-bit integer in Go).
    pub upload_size: i64,
    /// snapshotd extension: the client asks for in-band error replies instead of silent
    /// closes. Encoded as `"SnapshotdErrorReplies":true` after `UploadSize`, only when set, so
    /// requests that leave it unset are byte-identical to a Go client's.
    pub error_replies: bool,
}

impl Request {
    /// A request of the given type with every other field zero (as Go clients start).
    pub fn new(kind: RequestType) -> Request {
        Request {
            type_code: kind.as_u8(),
            ..Request::default()
        }
    }

    /// Appends Go's `json.Encoder` output (compact JSON followed by `\n`) to `out`.
    pub fn encode_json(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        marshal_into(&GoRequest::from(self), out).map_err(WireError::BadRequestJson)?;
        out.push(b'\n');
        Ok(())
    }

    /// The JSON line as a new vector (see [`Request::encode_json`]).
    pub fn to_json_line(&self) -> Result<Vec<u8>, WireError> {
        let mut v = Vec::with_capacity(256);
        self.encode_json(&mut v)?;
        Ok(v)
    }

    /// Decodes one JSON object (no trailing newline) with Go `encoding/json` semantics.
    pub fn from_json(json: &[u8]) -> Result<Request, WireError> {
        serde_json::from_slice::<GoDecoded>(json)
            .map(|d| d.0)
            .map_err(WireError::BadRequestJson)
    }
}

#[derive(Serialize)]
struct GoRequest<'a> {
    #[serde(rename = "Type")]
    type_code: u8,
    #[serde(rename = "BackupDatabase")]
    backup_database: &'a str,
    #[serde(rename = "RestoreDatabase")]
    restore_database: &'a str,
    #[serde(rename = "BackupRetentionPolicy")]
    backup_retention_policy: &'a str,
    #[serde(rename = "RestoreRetentionPolicy")]
    restore_retention_policy: &'a str,
    #[serde(rename = "ShardID")]
    shard_id: u64,
    #[serde(rename = "Since")]
    since: &'a GoTime,
    #[serde(rename = "ExportStart")]
    export_start: &'a GoTime,
    #[serde(rename = "ExportEnd")]
    export_end: &'a GoTime,
    #[serde(rename = "UploadSize")]
    upload_size: i64,
    #[serde(rename = "SnapshotdErrorReplies", skip_serializing_if = "is_false")]
    error_replies: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl<'a> From<&'a Request> for GoRequest<'a> {
    fn from(r: &'a Request) -> Self {
        GoRequest {
            type_code: r.type_code,
            backup_database: &r.backup_database,
            restore_database: &r.restore_database,
            backup_retention_policy: &r.backup_retention_policy,
            restore_retention_policy: &r.restore_retention_policy,
            shard_id: r.shard_id,
            since: &r.since,
            export_start: &r.export_start,
            export_end: &r.export_end,
            upload_size: r.upload_size,
            error_replies: r.error_replies,
        }
    }
}

/// Deserializes with Go semantics: keys in document order, case-insensitive, later keys win,
/// `null` is a no-op, unknown keys are skipped.
struct GoDecoded(Request);

impl<'de> de::Deserialize<'de> for GoDecoded {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(RequestVisitor)
    }
}

struct RequestVisitor;

fn set<T>(slot: &mut T, v: Option<T>) {
    if let Some(v) = v {
        *slot = v;
    }
}

impl<'de> Visitor<'de> for RequestVisitor {
    type Value = GoDecoded;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a snapshotter Request object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<GoDecoded, A::Error> {
        let mut r = Request::default();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let k = key.as_ref();
            if key_matches(k, "Type") {
                set(&mut r.type_code, map.next_value()?);
            } else if key_matches(k, "BackupDatabase") {
                set(&mut r.backup_database, map.next_value()?);
            } else if key_matches(k, "RestoreDatabase") {
                set(&mut r.restore_database, map.next_value()?);
            } else if key_matches(k, "BackupRetentionPolicy") {
                set(&mut r.backup_retention_policy, map.next_value()?);
            } else if key_matches(k, "RestoreRetentionPolicy") {
                set(&mut r.restore_retention_policy, map.next_value()?);
            } else if key_matches(k, "ShardID") {
                set(&mut r.shard_id, map.next_value()?);
            } else if key_matches(k, "Since") {
                set(&mut r.since, map.next_value()?);
            } else if key_matches(k, "ExportStart") {
                set(&mut r.export_start, map.next_value()?);
            } else if key_matches(k, "ExportEnd") {
                set(&mut r.export_end, map.next_value()?);
            } else if key_matches(k, "UploadSize") {
                set(&mut r.upload_size, map.next_value()?);
            } else if key_matches(k, ERROR_REPLIES_KEY) {
                set(&mut r.error_replies, map.next_value()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(GoDecoded(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const META_REQ: &str = r#"{"Type":1,"BackupDatabase":"","RestoreDatabase":"","BackupRetentionPolicy":"","RestoreRetentionPolicy":"","ShardID":0,"Since":"0001-01-01T00:00:00Z","ExportStart":"0001-01-01T00:00:00Z","ExportEnd":"0001-01-01T00:00:00Z","UploadSize":0}"#;

    #[test]
    fn encodes_go_bytes() {
        let line = Request::new(RequestType::MetastoreBackup)
            .to_json_line()
            .unwrap();
        assert_eq!(line, format!("{META_REQ}\n").as_bytes());
    }

    #[test]
    fn decodes_go_semantics() {
        let r = Request::from_json(
            br#"{"shardid":5,"SHARDID":7,"Since":null,"unknown":{"x":[1]},"backupDatabase":"db"}"#,
        )
        .unwrap();
        assert_eq!(r.shard_id, 7);
        assert_eq!(r.backup_database, "db");
        assert!(r.since.is_zero());
        assert!(!r.error_replies);
        let r = Request::from_json(br#"{"ShardID":3,"ShardID":null}"#).unwrap();
        assert_eq!(r.shard_id, 3, "null is a no-op in Go");
    }

    #[test]
    fn rejects_wrong_types() {
        for bad in [
            r#"{"ShardID":-1}"#,
            r#"{"ShardID":1.5}"#,
            r#"{"Type":256}"#,
            r#"{"BackupDatabase":1}"#,
            r#"{"Since":"yesterday"}"#,
            r#"{"UploadSize":"1"}"#,
            r#"[]"#,
        ] {
            assert!(Request::from_json(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn extension_only_when_set() {
        let mut r = Request::new(RequestType::ShardBackup);
        r.error_replies = true;
        let line = String::from_utf8(r.to_json_line().unwrap()).unwrap();
        assert!(line.ends_with("\"UploadSize\":0,\"SnapshotdErrorReplies\":true}\n"));
        assert_eq!(Request::from_json(line.trim_end().as_bytes()).unwrap(), r);
    }
}
