//! `verify`: a backup location checked against its manifests without any server.

use std::collections::BTreeSet;

use futures::StreamExt;

use crate::error::{ClientError, Result};
use crate::filecheck::{check_file, read_meta_blob, verify_archive};
use crate::layout::{self, ParsedManifest, RestorePlan};
use crate::proto;
use crate::storage::Storage;

/// The findings of [`verify`].
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Manifests checked, newest first.
    pub manifests: Vec<String>,
    /// Files checked (meta and archives).
    pub files_checked: usize,
    /// Files whose manifest carries no checksum (written by influxd): size and structure
    /// checks only.
    pub without_checksum: usize,
    /// Everything wrong; empty means the backup is good.
    pub problems: Vec<String>,
    /// Things worth knowing that are not errors.
    pub notes: Vec<String>,
}

impl VerifyReport {
    /// Whether nothing is wrong.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks every manifest in `src`: each file's size and SHA-256 (when recorded), that the meta
/// decodes and matches its recorded size, and that every archive gunzips to a complete tar of
/// the recorded size.
pub async fn verify(src: &Storage, jobs: usize, max_meta_blob: u64) -> Result<VerifyReport> {
    verify_at(src, jobs, max_meta_blob, None).await
}

/// [`verify`] limited to the restore point `at` names (see [`crate::points::select`]; `None`
/// checks every manifest). Files of other points are then not reported as orphans.
pub async fn verify_at(
    src: &Storage,
    jobs: usize,
    max_meta_blob: u64,
    at: Option<&str>,
) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    let mut listing = src.list().await?;
    let mut names = layout::manifest_names(src).await?;
    if at.is_some() {
        let points = crate::points::list_points(src).await?;
        let id = crate::points::select(&points, at)?.id.clone();
        names.retain(|n| crate::points::point_of(n) == Some(id.as_str()));
        listing.retain(|e| crate::points::point_of(&e.name) == Some(id.as_str()));
    }
    if names.is_empty() {
        let missing = ClientError::NoManifest {
            location: src.display().to_string(),
        };
        report.problems.push(missing.to_string());
        return Ok(report);
    }
    let mut manifests = Vec::with_capacity(names.len());
    for name in names {
        match layout::read_manifest(src, &name).await {
            Ok(m) => manifests.push(m),
            Err(e) => report.problems.push(e.to_string()),
        }
    }
    let mut referenced = BTreeSet::new();
    for m in &manifests {
        report.manifests.push(m.name.clone());
        referenced.insert(m.name.clone());
        referenced.insert(m.meta.file_name.clone());
        referenced.extend(m.files.iter().map(|f| f.file_name.clone()));
        verify_manifest(src, m, jobs, max_meta_blob, &mut report).await;
    }
    let orphans: Vec<&str> = listing
        .iter()
        .map(|e| e.name.as_str())
        .filter(|n| !referenced.contains(*n) && looks_like_backup_file(n))
        .collect();
    if !orphans.is_empty() {
        report.notes.push(format!(
            "{} file(s) belong to no manifest (an incomplete run?): {}",
            orphans.len(),
            orphans.join(", ")
        ));
    }
    if report.without_checksum > 0 {
        report.notes.push(format!(
            "{} file(s) have no checksum in their manifest (written by influxd): checked size \
             and structure only",
            report.without_checksum
        ));
    }
    Ok(report)
}

fn looks_like_backup_file(n: &str) -> bool {
    n.ends_with(".meta") || n.ends_with(".tar.gz")
}

async fn verify_manifest(
    src: &Storage,
    m: &ParsedManifest,
    jobs: usize,
    max_meta_blob: u64,
    report: &mut VerifyReport,
) {
    // The meta file.
    report.files_checked += 1;
    if m.meta.sha256.is_none() {
        report.without_checksum += 1;
    }
    match check_file(src, &m.meta.file_name, m.meta.sha256.clone(), m.meta.bytes).await {
        Err(e) => report.problems.push(format!("{}: {e}", m.name)),
        Ok(()) => {
            let plan = RestorePlan {
                manifest: m.name.clone(),
                meta: m.meta.clone(),
                shards: Vec::new(),
                chains: Default::default(),
            };
            match read_meta_blob(src, &plan, max_meta_blob).await {
                Err(e) => report.problems.push(format!("{}: {e}", m.name)),
                Ok(blob) => match proto::summarize_meta(&blob) {
                    Ok(summary) => report
                        .notes
                        .push(format!("{}: {}: {summary}", m.name, m.meta.file_name)),
                    Err(e) => report.problems.push(format!(
                        "{}: {}: meta.Data does not decode: {e}",
                        m.name, m.meta.file_name
                    )),
                },
            }
        }
    }
    // The archives, in parallel.
    let results: Vec<(String, Result<()>)> = futures::stream::iter(m.files.iter().cloned())
        .map(|f| async move {
            let name = f.file_name.clone();
            (name, verify_archive(src, &f).await)
        })
        .buffer_unordered(jobs.max(1))
        .collect()
        .await;
    for (name, r) in results {
        report.files_checked += 1;
        if m.files
            .iter()
            .any(|f| f.file_name == name && f.sha256.is_none())
        {
            report.without_checksum += 1;
        }
        if let Err(e) = r {
            let msg = e.to_string();
            if msg.starts_with(&name) {
                report.problems.push(format!("{}: {msg}", m.name));
            } else {
                report.problems.push(format!("{}: {name}: {msg}", m.name));
            }
        }
    }
}
