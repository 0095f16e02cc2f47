//! Helpers: capture discovery and whole-buffer decoding.

use std::path::{Path, PathBuf};

use bytes::BytesMut;
use snapshotd_wire::WireError;
use tokio_util::codec::Decoder;

/// One captured connection.
pub struct Conn {
    pub name: String,
    pub kind: u8,
    pub c2s: Vec<u8>,
    pub s2c: Vec<u8>,
}

fn sorted(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// Every connection of every capture scenario.
pub fn connections() -> Vec<Conn> {
    let root = snapshotd_testutil::vector("influx/captures");
    let mut out = Vec::new();
    for scen in sorted(&root) {
        for f in sorted(&scen) {
            let file = f.file_name().unwrap().to_str().unwrap().to_owned();
            let Some(stem) = file.strip_suffix(".c2s.bin") else {
                continue;
            };
            let kind = stem.split('-').nth(1).unwrap();
            let kind: u8 = kind.strip_prefix("type").unwrap().parse().unwrap();
            let s2c = std::fs::read(scen.join(format!("{stem}.s2c.bin"))).unwrap();
            out.push(Conn {
                name: format!("{}/{stem}", scen.file_name().unwrap().to_str().unwrap()),
                kind,
                c2s: std::fs::read(&f).unwrap(),
                s2c,
            });
        }
    }
    assert!(
        out.len() >= 40,
        "expected the full capture set, got {}",
        out.len()
    );
    out
}

/// Files of a backup directory ending in `suffix`.
pub fn backup_files(suffix: &str) -> Vec<PathBuf> {
    let root = snapshotd_testutil::vector("influx/backups");
    let mut out = Vec::new();
    for d in sorted(&root) {
        for f in sorted(&d) {
            if f.to_str().unwrap().ends_with(suffix) {
                out.push(f);
            }
        }
    }
    out
}

/// Decodes all of `bytes` as one stream ending in EOF; returns frames and what is left.
pub fn decode_all<D: Decoder<Error = WireError>>(
    codec: &mut D,
    bytes: &[u8],
) -> Result<(Vec<D::Item>, BytesMut), WireError> {
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(f) = codec.decode(&mut buf)? {
        out.push(f);
    }
    while let Some(f) = codec.decode_eof(&mut buf)? {
        out.push(f);
    }
    Ok((out, buf))
}

/// Feeds `bytes` one byte at a time (then EOF), as a slow peer would.
pub fn decode_bytewise<D: Decoder<Error = WireError>>(
    codec: &mut D,
    bytes: &[u8],
) -> Result<(Vec<D::Item>, BytesMut), WireError> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for b in bytes {
        buf.extend_from_slice(&[*b]);
        while let Some(f) = codec.decode(&mut buf)? {
            out.push(f);
        }
    }
    while let Some(f) = codec.decode_eof(&mut buf)? {
        out.push(f);
    }
    Ok((out, buf))
}
