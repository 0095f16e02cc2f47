//! File names of a portable backup run: `TS.meta`, `TS.s<ID>.tar.gz`, `TS.manifest`.

use chrono::{DateTime, Utc};

/// The run timestamp `YYYYMMDDTHHMMSSZ` (UTC) every file of one backup run shares.
pub fn run_timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y%m%dT%H%M%SZ").to_string()
}

/// `TS.meta`.
pub fn meta_file_name(ts: &str) -> String {
    format!("{ts}.meta")
}

/// `TS.s<ID>.tar.gz` (decimal id, no padding).
pub fn shard_file_name(ts: &str, shard_id: u64) -> String {
    format!("{ts}.s{shard_id}.tar.gz")
}

/// `TS.manifest`.
pub fn manifest_file_name(ts: &str) -> String {
    format!("{ts}.manifest")
}

/// Splits `TS.s<ID>.tar.gz` into its timestamp and shard id.
pub fn parse_shard_file_name(name: &str) -> Option<(&str, u64)> {
    let stem = name.strip_suffix(".tar.gz")?;
    let (ts, id) = stem.rsplit_once(".s")?;
    if ts.is_empty() || id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((ts, id.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn names_match_influx() {
        let at = Utc.with_ymd_and_hms(2026, 11, 22, 2, 23, 8).unwrap();
        let ts = run_timestamp(at);
        assert_eq!(ts, "20261122T022308Z");
        assert_eq!(meta_file_name(&ts), "20261122T022308Z.meta");
        assert_eq!(shard_file_name(&ts, 12), "20261122T022308Z.s12.tar.gz");
        assert_eq!(manifest_file_name(&ts), "20261122T022308Z.manifest");
        assert_eq!(
            parse_shard_file_name("20261122T022308Z.s12.tar.gz"),
            Some(("20261122T022308Z", 12))
        );
        assert_eq!(parse_shard_file_name("x.s.tar.gz"), None);
        assert_eq!(parse_shard_file_name("x.s1a.tar.gz"), None);
        assert_eq!(parse_shard_file_name("x.s1.tar"), None);
    }
}
