//! The crate's error type.

/// Everything that can go wrong talking to influx or reading a backup.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InfluxApiError {
    /// The HTTP request could not be sent or its answer read.
    #[error("{what} at {url}: {source}")]
    Http {
        /// What was being done.
        what: String,
        /// The target's base URL.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The target answered with an error status or an error in the result.
    #[error("{what}: the target answered {status}: {message}")]
    Server {
        /// What was being done (names the database / RP / shard).
        what: String,
        /// HTTP status code.
        status: u16,
        /// The error text the server returned.
        message: String,
    },
    /// The `--http` URL is not an http(s) URL.
    #[error("--http {url:?}: expected http://HOST:PORT or https://HOST:PORT")]
    BadUrl {
        /// The URL given.
        url: String,
    },
    /// The extra CA certificates could not be parsed.
    #[error("--http-ca: the CA certificates are not a PEM bundle ({source}); pass a PEM file")]
    CaCertificates {
        /// The parse error.
        #[source]
        source: reqwest::Error,
    },
    /// The HTTP client could not be built (TLS setup).
    #[error("HTTP client for {url}: {source}")]
    HttpClient {
        /// The target's base URL.
        url: String,
        /// The builder's error.
        #[source]
        source: reqwest::Error,
    },
    /// The directory holds no manifest, so it is no (complete) portable backup.
    #[error(
        "{dir}: no *.manifest file (not a portable backup directory, or an incomplete one): \
         check the path"
    )]
    NotABackup {
        /// The directory given.
        dir: String,
    },
    /// The restore point asked for has no manifest in the backup directory.
    #[error("{dir} holds no {manifest} (list the restore points with `snapshotd snapshots`)")]
    ManifestNotInBackup {
        /// The directory given.
        dir: String,
        /// The manifest's file name.
        manifest: String,
    },
    /// The database asked for is not in the backup's metadata.
    #[error("database {db:?} is not in the backup (check --db against the backup's databases)")]
    DatabaseNotInBackup {
        /// The database asked for.
        db: String,
    },
    /// A file could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// Which file and what was being done.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The backup is malformed or corrupt.
    #[error("{context}: {message}")]
    Corrupt {
        /// Which file / shard / key.
        context: String,
        /// What is wrong.
        message: String,
    },
    /// A TSM decode error, with the shard and file it came from.
    #[error("{context}: {source}")]
    Tsm {
        /// Which shard and file.
        context: String,
        /// The decoder's error.
        #[source]
        source: snapshotd_tsm::TsmError,
    },
    /// An influxd process uses the meta (or data) dir an offline restore would write.
    #[error(
        "influxd (pid {pid}) is running with {meta_dir}: stop it first (an offline restore \
         must not race the live influxd)"
    )]
    InfluxdRunning {
        /// The influxd process.
        pid: u32,
        /// The meta or data dir.
        meta_dir: String,
    },
    /// An offline restore would replace a shard directory that holds other files.
    #[error(
        "{path} exists and differs from shard {shard_id} of {database}/{policy} in the \
         backup: move it away or delete it (it belongs to the metastore being replaced, or \
         to another restore), then re-run"
    )]
    ShardDirExists {
        /// The existing shard directory.
        path: String,
        /// Database of the shard.
        database: String,
        /// Retention policy of the shard.
        policy: String,
        /// Shard ID.
        shard_id: u64,
    },
    /// influxd's WAL dir holds a log for a shard an offline restore would write.
    #[error(
        "{path} holds a write-ahead log for shard {shard_id}, which influxd would replay into \
         the restored shard: delete it (it belongs to the data being replaced), then re-run"
    )]
    ShardWalExists {
        /// The shard's WAL directory.
        path: String,
        /// Shard ID.
        shard_id: u64,
    },
    /// The copy an offline restore keeps of the old `meta.db` would overwrite an earlier one.
    #[error("{path} already exists: choose another stamp (it holds an earlier copy)")]
    BackupCopyExists {
        /// The existing copy.
        path: String,
    },
    /// A merge worker panicked or was cancelled.
    #[error("{task}: worker failed: {source} (a panic is a bug: please report it)")]
    Worker {
        /// What it was doing, naming the shard.
        task: String,
        /// Why it ended.
        #[source]
        source: tokio::task::JoinError,
    },
    /// The work was cancelled by the caller.
    #[error("cancelled")]
    Cancelled,
}

/// Shorthand result.
pub type Result<T, E = InfluxApiError> = std::result::Result<T, E>;

/// An `Io` error builder for `map_err`.
pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> InfluxApiError {
    let context = context.into();
    move |source| InfluxApiError::Io { context, source }
}

/// A `Corrupt` error.
pub(crate) fn corrupt(context: impl Into<String>, message: impl Into<String>) -> InfluxApiError {
    InfluxApiError::Corrupt {
        context: context.into(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::InfluxApiError;
    use crate::{Backup, HttpOptions, InfluxHttp};

    #[test]
    fn a_url_without_scheme_is_named() {
        let err = InfluxHttp::new(&HttpOptions::new("localhost:8086")).err();
        assert!(
            matches!(&err, Some(InfluxApiError::BadUrl { url }) if url == "localhost:8086"),
            "{err:?}"
        );
    }

    #[test]
    fn garbage_ca_certificates_are_refused() {
        let mut opts = HttpOptions::new("https://localhost:8086");
        opts.ca_pem = Some(b"-----BEGIN CERTIFICATE-----\nnot base64!\n".to_vec());
        let err = InfluxHttp::new(&opts).err();
        assert!(
            matches!(&err, Some(InfluxApiError::CaCertificates { .. })),
            "{err:?}"
        );
    }

    #[test]
    fn a_directory_without_manifest_is_not_a_backup() {
        let dir = env!("CARGO_MANIFEST_DIR");
        let err = Backup::open(std::path::Path::new(dir)).err();
        assert!(
            matches!(&err, Some(InfluxApiError::NotABackup { dir: d }) if d == dir),
            "{err:?}"
        );
    }
}
