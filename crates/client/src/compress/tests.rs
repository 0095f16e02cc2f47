//! Member framing, ordering and the `auto` decision of [`ParallelGz`].

use std::io::{Read, Write};

use super::member::tests::{noise, text};
use super::*;

fn settings(mode: CompressionMode, workers: usize, chunk: usize) -> GzSettings {
    GzSettings {
        mode,
        level: 1,
        filename: Some(b"20210101T000000Z.s1.tar".to_vec()),
        workers,
        chunk,
    }
}

/// Writes `data` in uneven pieces and returns the gzip stream and the stats.
fn gzip(data: &[u8], s: GzSettings) -> (Vec<u8>, GzStats) {
    let mut w = ParallelGz::new(Vec::new(), s);
    for piece in data.chunks(7_777) {
        w.write_all(piece).unwrap();
    }
    w.finish().unwrap()
}

fn gunzip_all(gz: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(gz)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// Splits a gzip stream into members: (uncompressed bytes, CRC-32 field, ISIZE field).
fn members(mut gz: &[u8]) -> Vec<(Vec<u8>, u32, u32)> {
    let mut out = Vec::new();
    while !gz.is_empty() {
        let mut d = flate2::bufread::GzDecoder::new(gz);
        let mut data = Vec::new();
        d.read_to_end(&mut data).unwrap();
        let rest = d.into_inner();
        let used = gz.len() - rest.len();
        let t = &gz[used - 8..used];
        let crc = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
        let isize = u32::from_le_bytes([t[4], t[5], t[6], t[7]]);
        out.push((data, crc, isize));
        gz = rest;
    }
    out
}

fn mixed(n: usize) -> Vec<u8> {
    let mut v = text(n / 2);
    v.extend(noise(n - n / 2, 11));
    v
}

#[test]
fn multi_member_stream_decodes_to_the_original_bytes() {
    let data = mixed(1_000_003);
    for mode in [
        CompressionMode::Auto,
        CompressionMode::Gzip,
        CompressionMode::None,
    ] {
        let (gz, _) = gzip(&data, settings(mode, 3, 64 * 1024));
        assert_eq!(gunzip_all(&gz), data, "{mode:?}");
    }
}

#[test]
fn every_member_carries_the_crc_and_size_of_its_own_chunk() {
    let chunk = 64 * 1024;
    let data = mixed(10 * chunk + 123);
    let (gz, _) = gzip(&data, settings(CompressionMode::Auto, 4, chunk));
    let ms = members(&gz);
    assert_eq!(ms.len(), 11);
    for (i, (got, crc, isize)) in ms.iter().enumerate() {
        let want = &data[i * chunk..((i + 1) * chunk).min(data.len())];
        assert_eq!(got.as_slice(), want, "member {i}");
        let mut c = flate2::Crc::new();
        c.update(want);
        assert_eq!(*crc, c.sum(), "member {i} CRC-32");
        assert_eq!(*isize, want.len() as u32, "member {i} ISIZE");
    }
    // Only the first member names the file, as a single-member gzip would.
    assert_eq!(gz[3] & 0x08, 0x08);
    let second = &gz[gz.len() - members_tail_len(&gz, 10)..];
    assert_eq!(second[3] & 0x08, 0, "later members have no FNAME");
}

/// Bytes from the start of member `k` to the end of the stream.
fn members_tail_len(gz: &[u8], k: usize) -> usize {
    let mut rest = gz;
    for _ in 0..k {
        let mut d = flate2::bufread::GzDecoder::new(rest);
        std::io::copy(&mut d, &mut std::io::sink()).unwrap();
        rest = d.into_inner();
    }
    rest.len()
}

#[test]
fn auto_deflates_compressible_chunks_and_stores_incompressible_ones() {
    let chunk = 64 * 1024;
    let s = || settings(CompressionMode::Auto, 2, chunk);
    let txt = text(20 * chunk);
    let (gz, st) = gzip(&txt, s());
    assert_eq!((st.deflated_members, st.stored_members), (20, 0));
    assert!(gz.len() < txt.len() / 3, "{} of {}", gz.len(), txt.len());

    let rnd = noise(20 * chunk, 5);
    let (gz, st) = gzip(&rnd, s());
    assert_eq!((st.deflated_members, st.stored_members), (0, 20));
    assert!(gz.len() > rnd.len() && gz.len() < rnd.len() + 20 * 100);
}

#[test]
fn auto_re_samples_so_a_mixed_stream_adapts() {
    let chunk = 64 * 1024;
    let per = PROBE_EVERY as usize * 2;
    let mut data = noise(per * chunk, 1);
    data.extend(text(per * chunk));
    let (gz, st) = gzip(&data, settings(CompressionMode::Auto, 2, chunk));
    assert_eq!(st.stored_members, per as u64);
    assert_eq!(st.deflated_members, per as u64);
    assert_eq!(gunzip_all(&gz), data);
}

#[test]
fn gzip_and_none_modes_ignore_the_content() {
    let chunk = 64 * 1024;
    let rnd = noise(5 * chunk, 2);
    let (_, st) = gzip(&rnd, settings(CompressionMode::Gzip, 2, chunk));
    assert_eq!((st.deflated_members, st.stored_members), (5, 0));
    let txt = text(5 * chunk);
    let (_, st) = gzip(&txt, settings(CompressionMode::None, 2, chunk));
    assert_eq!((st.deflated_members, st.stored_members), (0, 5));
}

#[test]
fn output_does_not_depend_on_the_number_of_workers() {
    let data = mixed(900_000);
    let (one, _) = gzip(&data, settings(CompressionMode::Auto, 1, 32 * 1024));
    let (four, _) = gzip(&data, settings(CompressionMode::Auto, 4, 32 * 1024));
    assert_eq!(one, four);
}

#[test]
fn an_empty_or_small_stream_is_one_valid_member() {
    let (gz, st) = gzip(&[], settings(CompressionMode::Auto, 2, 1024));
    assert_eq!(members(&gz).len(), 1);
    assert_eq!(gunzip_all(&gz), b"");
    assert_eq!(st.raw_bytes, 0);
    let (gz, _) = gzip(b"hello", settings(CompressionMode::Gzip, 2, 1024));
    assert_eq!(members(&gz).len(), 1);
    assert_eq!(gunzip_all(&gz), b"hello");
}

#[test]
fn abandon_hands_back_the_inner_writer_without_the_queued_members() {
    let mut w = ParallelGz::new(Vec::new(), settings(CompressionMode::Gzip, 2, 1024));
    w.write_all(&text(10_000)).unwrap();
    assert!(w.stats().raw_bytes == 10_000);
    let inner = w.abandon().unwrap();
    assert!(inner.len() < 10_000);
}
