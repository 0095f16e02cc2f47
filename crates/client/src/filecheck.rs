//! The file checks that restore and verify share: a stored file against its manifest entry
//! (size, SHA-256), an archive as a complete gzipped tar, and the `.meta` blob.

use futures::StreamExt;

use crate::error::{ClientError, Result};
use crate::hashio::sha256_of;
use crate::layout::{FileRecord, RestorePlan};
use crate::loadable::{self, ShardFileKind};
use crate::proto;
use crate::storage::Storage;
use crate::tarcheck::copy_validated_with;

/// Checks sizes and SHA-256 (when recorded) of the meta file and the selected archives; an
/// archive without a checksum (influxd wrote the manifest) is instead gunzipped and checked to
/// be one complete tar of the manifest's size (this catches influx 1.6's retry bug, which
/// appends a second download to a partial one). Returns whether every file had a checksum.
pub async fn check_files(
    src: &Storage,
    plan: &RestorePlan,
    selected: &[FileRecord],
    jobs: usize,
) -> Result<bool> {
    let all_hashed = plan.meta.sha256.is_some() && selected.iter().all(|f| f.sha256.is_some());
    check_file(
        src,
        &plan.meta.file_name,
        plan.meta.sha256.clone(),
        plan.meta.bytes,
    )
    .await?;
    let results: Vec<Result<()>> = futures::stream::iter(selected)
        .map(|f| async move {
            match &f.sha256 {
                Some(_) => check_file(src, &f.file_name, f.sha256.clone(), f.bytes).await,
                None => verify_archive(src, f).await,
            }
        })
        .buffer_unordered(jobs)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>>>()?;
    Ok(all_hashed)
}

/// Checks one file against its manifest entry.
pub async fn check_file(
    src: &Storage,
    name: &str,
    sha256: Option<String>,
    bytes: Option<u64>,
) -> Result<()> {
    let size = src
        .size(name)
        .await?
        .ok_or_else(|| ClientError::Integrity {
            file: name.to_string(),
            detail: "missing".into(),
        })?;
    if let Some(b) = bytes
        && b != size
    {
        return Err(ClientError::Integrity {
            file: name.to_string(),
            detail: format!("size {size} bytes, manifest says {b}"),
        });
    }
    let Some(expected) = sha256 else {
        return Ok(());
    };
    let reader = src.blocking_reader(name).await?;
    let (actual, _) = tokio::task::spawn_blocking(move || sha256_of(reader))
        .await
        .map_err(|e| ClientError::worker(format!("checksum of {name}"), e))?
        .map_err(|e| ClientError::io(format!("read {name}"), e))?;
    if !actual.eq_ignore_ascii_case(&expected) {
        return Err(ClientError::Integrity {
            file: name.to_string(),
            detail: format!("sha256 {actual}, manifest says {expected}"),
        });
    }
    Ok(())
}

/// Reads the `.meta` file and unwraps the raw `meta.Data` blob, checking its length.
pub async fn read_meta_blob(src: &Storage, plan: &RestorePlan, limit: u64) -> Result<Vec<u8>> {
    let name = &plan.meta.file_name;
    let raw = src.get_bounded(name, limit.saturating_add(64)).await?;
    let blob = proto::decode_portable_meta(&raw).map_err(|e| ClientError::Integrity {
        file: name.clone(),
        detail: format!("not a portable meta file: {e}"),
    })?;
    if blob.len() as u64 != plan.meta.size {
        return Err(ClientError::Integrity {
            file: name.clone(),
            detail: format!(
                "meta blob is {} bytes, manifest {} says {}",
                blob.len(),
                plan.manifest,
                plan.meta.size
            ),
        });
    }
    Ok(blob)
}

/// Checks one archive: recorded size and checksum, then that it gunzips to a complete tar of
/// the manifest's uncompressed size.
pub async fn verify_archive(src: &Storage, f: &FileRecord) -> Result<()> {
    check_file(src, &f.file_name, f.sha256.clone(), f.bytes).await?;
    let reader = src.blocking_reader(&f.file_name).await?;
    let name = f.file_name.clone();
    let stats = tokio::task::spawn_blocking(move || {
        let gz = flate2::read::MultiGzDecoder::new(std::io::BufReader::with_capacity(
            256 * 1024,
            reader,
        ));
        let mut ignored = Vec::new();
        let stats = copy_validated_with(gz, std::io::sink(), |entry| {
            if loadable::classify(entry) == ShardFileKind::Other {
                ignored.push(entry.to_string());
            }
        });
        stats.map(|s| (s, ignored))
    })
    .await
    .map_err(|e| ClientError::worker(format!("check archive {}", f.file_name), e))?
    .map_err(|e| ClientError::Integrity {
        file: name.clone(),
        detail: format!("not a complete gzipped tar: {e}"),
    })?;
    let (stats, ignored) = stats;
    let ignored: Vec<&str> = ignored.iter().map(String::as_str).collect();
    if let Some(detail) = loadable::warning(&name, &ignored) {
        return Err(ClientError::Unloadable { detail });
    }
    if stats.bytes != f.size {
        return Err(ClientError::Integrity {
            file: name,
            detail: format!(
                "uncompressed tar is {} bytes, manifest says {}",
                stats.bytes, f.size
            ),
        });
    }
    Ok(())
}
