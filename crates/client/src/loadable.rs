//! Which files of a shard archive influxd 1.6 actually loads on restore: TSM files (and the
//! tombstones beside them) at the top of the shard directory. Anything else in a shard tar —
//! WAL segments (`.wal`, as older snapshotd backups hold), files in subdirectories, stray
//! files — is ignored by influxd, so a restore that "succeeds" with them loses their data.
//! `restore` should refuse (unless forced) and `verify` warn when [`unloadable`] is not empty.

/// What influxd makes of one shard archive entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShardFileKind {
    /// A TSM data file (`<gen>-<seq>.tsm`): loaded.
    Tsm,
    /// A tombstone file (`<gen>-<seq>.tombstone`): applies to the TSM file of the same stem.
    Tombstone,
    /// Anything else: ignored by influxd (its data will not be queryable).
    Other,
}

/// Classifies a shard tar entry named `<db>/<rp>/<id>/<file>`; entries deeper than the shard
/// directory (such as `wal/…`) or not under a shard are [`ShardFileKind::Other`].
pub fn classify(entry_name: &str) -> ShardFileKind {
    let parts: Vec<&str> = entry_name.split('/').collect();
    let [db, rp, id, file] = parts.as_slice() else {
        return ShardFileKind::Other;
    };
    if db.is_empty() || rp.is_empty() || id.parse::<u64>().is_err() {
        return ShardFileKind::Other;
    }
    let stem_ok = |stem: &str| {
        stem.split_once('-').is_some_and(|(g, s)| {
            !g.is_empty()
                && !s.is_empty()
                && g.bytes().all(|b| b.is_ascii_digit())
                && s.bytes().all(|b| b.is_ascii_digit())
        })
    };
    if let Some(stem) = file.strip_suffix(".tsm") {
        if stem_ok(stem) {
            return ShardFileKind::Tsm;
        }
    } else if let Some(stem) = file.strip_suffix(".tombstone")
        && stem_ok(stem)
    {
        return ShardFileKind::Tombstone;
    }
    ShardFileKind::Other
}

/// The entry names influxd would not load, in input order.
pub fn unloadable<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    names
        .into_iter()
        .filter(|n| classify(n) == ShardFileKind::Other)
        .collect()
}

/// A one-line warning naming the archive, how many entries influxd ignores and the first
/// few of them, with the fix; `None` when every entry loads.
pub fn warning(archive: &str, unloadable: &[&str]) -> Option<String> {
    let first = unloadable.first()?;
    let shown: Vec<&str> = unloadable.iter().take(3).copied().collect();
    let more = unloadable.len().saturating_sub(shown.len());
    let tail = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    let wal = if first.ends_with(".wal") {
        " (WAL segments from an older snapshotd backup)"
    } else {
        ""
    };
    Some(format!(
        "{archive}: {} file(s) influxd will not load{wal}: {}{tail}; their points would not be \
         queryable after restore. Take a new backup with this snapshotd (it ships TSM files \
         only), or pass --force to restore anyway",
        unloadable.len(),
        shown.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsm_and_tombstones_load_everything_else_does_not() {
        assert_eq!(
            classify("db/autogen/3/000000001-000000002.tsm"),
            ShardFileKind::Tsm
        );
        assert_eq!(
            classify("db/autogen/3/000000004-000000001.tombstone"),
            ShardFileKind::Tombstone
        );
        for other in [
            "db/autogen/3/wal/0000000000000000-0000000000000000.wal",
            "db/autogen/3/fields.idx",
            "db/autogen/3/x.tsm",
            "db/autogen/3/1-.tsm",
            "db/autogen/x/000000001-000000001.tsm",
            "autogen/3/000000001-000000001.tsm",
            "db/autogen/3/index/000000001-000000001.tsm",
            "/autogen/3/000000001-000000001.tsm",
            "",
        ] {
            assert_eq!(classify(other), ShardFileKind::Other, "{other}");
        }
    }

    #[test]
    fn warning_names_the_archive_the_files_and_the_fix() {
        let names = [
            "db/rp/1/000000001-000000001.tsm",
            "db/rp/1/wal/0000000000000000-0000000000000000.wal",
            "db/rp/1/wal/0000000000000001-0000000000000401.wal",
            "db/rp/1/a",
            "db/rp/1/b",
        ];
        let bad = unloadable(names);
        assert_eq!(bad.len(), 4);
        let w = warning("20261122T022308Z.s1.tar.gz", &bad).unwrap_or_default();
        assert!(w.starts_with("20261122T022308Z.s1.tar.gz: 4 file(s) influxd will not load"));
        assert!(w.contains("WAL segments") && w.contains("and 1 more") && w.contains("--force"));
        assert_eq!(warning("x", &unloadable(names[..1].iter().copied())), None);
    }
}
