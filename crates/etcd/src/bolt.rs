//! A small read-only reader of bbolt files (etcd's `member/snap/db`): enough to look a key
//! up in a bucket, find a bucket's last key and list a bucket, with every offset, page id
//! and tree depth checked against the file, so a damaged file is a typed error, never a
//! panic or an unbounded walk.
//!
//! Layout read here: pages of `page_size` bytes; page 0 and 1 are meta pages (the valid one
//! with the higher transaction id wins); a page starts with a 16-byte header (id, flags,
//! element count, overflow pages) followed by 16-byte elements. Branch elements give a key
//! and a child page; leaf elements give a key, a value and whether the value is a nested
//! bucket. A bucket value starts with its root page id (0: the bucket's own page follows
//! inline in the value).

use crate::error::{Error, Result};

const MAGIC: u32 = 0xED0C_DAED;
const VERSION: u32 = 2;
const HEADER: usize = 16;
const ELEM: usize = 16;
const BRANCH: u16 = 0x01;
const LEAF: u16 = 0x02;
const BUCKET_FLAG: u32 = 0x01;
/// Deepest tree walked; bbolt trees of any real size are a few levels deep.
const MAX_DEPTH: usize = 64;

/// A bbolt file held in memory.
pub struct Bolt<'a> {
    data: &'a [u8],
    name: String,
    page_size: usize,
    root: u64,
    high_water: u64,
}

/// Where a bucket's tree lives.
#[derive(Clone, Copy)]
pub enum Bucket<'a> {
    /// Root page id.
    Paged(u64),
    /// The bucket's single page, inline in its parent's value.
    Inline(&'a [u8]),
}

struct Page<'a> {
    bytes: &'a [u8],
    flags: u16,
    count: usize,
}

impl<'a> Bolt<'a> {
    /// Checks the meta pages of `data` (`name` is used in errors) and picks the newest.
    pub fn open(data: &'a [u8], name: &str) -> Result<Bolt<'a>> {
        let mut best: Option<(u64, Bolt<'a>)> = None;
        let mut why = String::from("file too short for a meta page");
        let first_size = meta(data, 0).ok().map_or(4096, |m| m.page_size);
        for offset in [0, first_size] {
            match meta(data, offset) {
                Ok(m) if best.as_ref().is_none_or(|(t, _)| m.txid > *t) => {
                    let b = Bolt {
                        data,
                        name: name.to_string(),
                        page_size: m.page_size,
                        root: m.root,
                        high_water: m.high_water,
                    };
                    best = Some((m.txid, b));
                }
                Ok(_) => {}
                Err(e) => why = e,
            }
        }
        best.map(|(_, b)| b).ok_or_else(|| Error::Corrupt {
            name: name.to_string(),
            reason: format!("not a bbolt file: {why}"),
        })
    }

    /// The top-level bucket called `name`, if any.
    pub fn bucket(&self, name: &[u8]) -> Result<Option<Bucket<'a>>> {
        match self.find(Bucket::Paged(self.root), name)? {
            Some((flags, v)) if flags & BUCKET_FLAG != 0 => Ok(Some(self.sub_bucket(v)?)),
            Some(_) => Err(self.corrupt(format!("{} is not a bucket", show(name)))),
            None => Ok(None),
        }
    }

    /// The value of `key` in `bucket` (not a nested bucket).
    pub fn get(&self, bucket: Bucket<'a>, key: &[u8]) -> Result<Option<&'a [u8]>> {
        Ok(self
            .find(bucket, key)?
            .filter(|(f, _)| f & BUCKET_FLAG == 0)
            .map(|(_, v)| v))
    }

    /// The greatest key of `bucket` with its value.
    pub fn last(&self, bucket: Bucket<'a>) -> Result<Option<(&'a [u8], &'a [u8])>> {
        let mut page = self.root_page(bucket)?;
        for _ in 0..MAX_DEPTH {
            if page.count == 0 {
                return Ok(None);
            }
            if page.flags & LEAF != 0 {
                let (_, k, v) = self.leaf_elem(&page, page.count - 1)?;
                return Ok(Some((k, v)));
            }
            let (_, child) = self.branch_elem(&page, page.count - 1)?;
            page = self.page(child)?;
        }
        Err(self.corrupt("tree deeper than 64 levels".into()))
    }

    /// Every key and value of `bucket` in key order (nested buckets skipped).
    pub fn entries(&self, bucket: Bucket<'a>) -> Result<Vec<(&'a [u8], &'a [u8])>> {
        let mut out = Vec::new();
        let root = self.root_page(bucket)?;
        self.collect(&root, 0, &mut out)?;
        Ok(out)
    }

    fn collect(
        &self,
        page: &Page<'a>,
        depth: usize,
        out: &mut Vec<(&'a [u8], &'a [u8])>,
    ) -> Result<()> {
        if depth >= MAX_DEPTH {
            return Err(self.corrupt("tree deeper than 64 levels".into()));
        }
        for i in 0..page.count {
            if page.flags & LEAF != 0 {
                let (f, k, v) = self.leaf_elem(page, i)?;
                if f & BUCKET_FLAG == 0 {
                    out.push((k, v));
                }
            } else {
                let (_, child) = self.branch_elem(page, i)?;
                self.collect(&self.page(child)?, depth + 1, out)?;
            }
        }
        Ok(())
    }

    /// Finds `key` in the tree of `bucket`: (leaf flags, value).
    fn find(&self, bucket: Bucket<'a>, key: &[u8]) -> Result<Option<(u32, &'a [u8])>> {
        let mut page = self.root_page(bucket)?;
        for _ in 0..MAX_DEPTH {
            if page.flags & LEAF != 0 {
                for i in 0..page.count {
                    let (f, k, v) = self.leaf_elem(&page, i)?;
                    if k == key {
                        return Ok(Some((f, v)));
                    }
                }
                return Ok(None);
            }
            // The child whose first key is the greatest one <= key (the first child otherwise).
            let mut child = None;
            for i in 0..page.count {
                let (k, c) = self.branch_elem(&page, i)?;
                if i == 0 || k <= key {
                    child = Some(c);
                }
                if k > key {
                    break;
                }
            }
            let Some(c) = child else { return Ok(None) };
            page = self.page(c)?;
        }
        Err(self.corrupt("tree deeper than 64 levels".into()))
    }

    fn sub_bucket(&self, value: &'a [u8]) -> Result<Bucket<'a>> {
        let root = le64(value, 0).ok_or_else(|| self.corrupt("short bucket header".into()))?;
        if root == 0 {
            let inline = value.get(16..).unwrap_or_default();
            return Ok(Bucket::Inline(inline));
        }
        Ok(Bucket::Paged(root))
    }

    fn root_page(&self, bucket: Bucket<'a>) -> Result<Page<'a>> {
        match bucket {
            Bucket::Paged(id) => self.page(id),
            Bucket::Inline(bytes) => self.parse_page(bytes, "inline bucket"),
        }
    }

    fn page(&self, id: u64) -> Result<Page<'a>> {
        if id < 2 || id >= self.high_water {
            return Err(self.corrupt(format!("page id {id} outside 2..{}", self.high_water)));
        }
        let start = (id as usize).checked_mul(self.page_size);
        let bytes = start
            .and_then(|s| self.data.get(s..s.checked_add(self.page_size)?))
            .ok_or_else(|| self.corrupt(format!("page {id} beyond the end of the file")))?;
        let overflow = le32(bytes, 12).unwrap_or(0) as usize;
        let len = (overflow + 1).checked_mul(self.page_size);
        let bytes = start
            .zip(len)
            .and_then(|(s, l)| self.data.get(s..s.checked_add(l)?))
            .ok_or_else(|| self.corrupt(format!("page {id} overflows the file")))?;
        self.parse_page(bytes, &format!("page {id}"))
    }

    fn parse_page(&self, bytes: &'a [u8], what: &str) -> Result<Page<'a>> {
        let (Some(flags), Some(count)) = (le16(bytes, 8), le16(bytes, 10)) else {
            return Err(self.corrupt(format!("{what}: short page header")));
        };
        if flags & (BRANCH | LEAF) == 0 {
            return Err(self.corrupt(format!("{what}: flags {flags:#x} are not a tree page")));
        }
        let count = count as usize;
        if HEADER + count * ELEM > bytes.len() {
            return Err(self.corrupt(format!("{what}: {count} elements overflow the page")));
        }
        Ok(Page {
            bytes,
            flags,
            count,
        })
    }

    fn leaf_elem(&self, p: &Page<'a>, i: usize) -> Result<(u32, &'a [u8], &'a [u8])> {
        let at = HEADER + i * ELEM;
        let field = |o| le32(p.bytes, at + o).unwrap_or(0) as usize;
        let (flags, pos, ksize, vsize) = (field(0) as u32, field(4), field(8), field(12));
        let k0 = at + pos;
        let key = slice(p.bytes, k0, ksize);
        let val = slice(p.bytes, k0 + ksize, vsize);
        match (key, val) {
            (Some(k), Some(v)) => Ok((flags, k, v)),
            _ => Err(self.corrupt(format!("leaf element {i} points outside its page"))),
        }
    }

    fn branch_elem(&self, p: &Page<'a>, i: usize) -> Result<(&'a [u8], u64)> {
        let at = HEADER + i * ELEM;
        let pos = le32(p.bytes, at).unwrap_or(0) as usize;
        let ksize = le32(p.bytes, at + 4).unwrap_or(0) as usize;
        let child = le64(p.bytes, at + 8).unwrap_or(0);
        let key = slice(p.bytes, at + pos, ksize)
            .ok_or_else(|| self.corrupt(format!("branch element {i} points outside its page")))?;
        Ok((key, child))
    }

    fn corrupt(&self, reason: String) -> Error {
        Error::Corrupt {
            name: self.name.clone(),
            reason,
        }
    }
}

struct Meta {
    page_size: usize,
    root: u64,
    high_water: u64,
    txid: u64,
}

/// Parses and checks the meta page at `offset` (magic, version, page size, FNV-1a checksum).
fn meta(data: &[u8], offset: usize) -> std::result::Result<Meta, String> {
    let m = data
        .get(offset + HEADER..offset + HEADER + 64)
        .ok_or_else(|| format!("no meta page at offset {offset}"))?;
    let (magic, version) = (le32(m, 0).unwrap_or(0), le32(m, 4).unwrap_or(0));
    if magic != MAGIC || version != VERSION {
        return Err(format!(
            "meta at {offset}: magic {magic:#x} version {version}"
        ));
    }
    if fnv1a(&m[..56]) != le64(m, 56).unwrap_or(0) {
        return Err(format!("meta at {offset}: checksum mismatch"));
    }
    let page_size = le32(m, 8).unwrap_or(0) as usize;
    if !(512..=1 << 20).contains(&page_size) || !page_size.is_power_of_two() {
        return Err(format!("meta at {offset}: page size {page_size}"));
    }
    Ok(Meta {
        page_size,
        root: le64(m, 16).unwrap_or(0),
        high_water: le64(m, 40).unwrap_or(0),
        txid: le64(m, 48).unwrap_or(0),
    })
}

fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn slice(b: &[u8], at: usize, len: usize) -> Option<&[u8]> {
    b.get(at..at.checked_add(len)?)
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(slice(b, at, 2)?.try_into().ok()?))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(slice(b, at, 4)?.try_into().ok()?))
}

fn le64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(slice(b, at, 8)?.try_into().ok()?))
}

fn show(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PS: usize = 4096;

    fn header(id: u64, flags: u16, count: usize) -> Vec<u8> {
        let mut p = id.to_le_bytes().to_vec();
        p.extend_from_slice(&flags.to_le_bytes());
        p.extend_from_slice(&(count as u16).to_le_bytes());
        p.extend_from_slice(&0u32.to_le_bytes());
        p
    }

    /// A leaf page: (flags, key, value) elements, keys and values after the element array.
    fn leaf(id: u64, elems: &[(u32, &[u8], Vec<u8>)]) -> Vec<u8> {
        let mut p = header(id, LEAF, elems.len());
        let mut data = Vec::new();
        for (i, (f, k, v)) in elems.iter().enumerate() {
            let pos = (elems.len() - i) * ELEM + data.len();
            for x in [*f, pos as u32, k.len() as u32, v.len() as u32] {
                p.extend_from_slice(&x.to_le_bytes());
            }
            data.extend_from_slice(k);
            data.extend_from_slice(v);
        }
        p.extend_from_slice(&data);
        p
    }

    fn branch(id: u64, elems: &[(&[u8], u64)]) -> Vec<u8> {
        let mut p = header(id, BRANCH, elems.len());
        let mut data = Vec::new();
        for (i, (k, child)) in elems.iter().enumerate() {
            let pos = (elems.len() - i) * ELEM + data.len();
            p.extend_from_slice(&(pos as u32).to_le_bytes());
            p.extend_from_slice(&(k.len() as u32).to_le_bytes());
            p.extend_from_slice(&child.to_le_bytes());
            data.extend_from_slice(k);
        }
        p.extend_from_slice(&data);
        p
    }

    fn meta_page(id: u64, root: u64, high_water: u64, txid: u64) -> Vec<u8> {
        let mut m = Vec::new();
        for x in [MAGIC, VERSION, PS as u32, 0] {
            m.extend_from_slice(&x.to_le_bytes());
        }
        for x in [root, 0, u64::MAX, high_water, txid] {
            m.extend_from_slice(&x.to_le_bytes());
        }
        let sum = fnv1a(&m);
        m.extend_from_slice(&sum.to_le_bytes());
        let mut p = header(id, 0x04, 0);
        p.extend_from_slice(&m);
        p
    }

    fn bucket_value(root: u64, inline: Option<Vec<u8>>) -> Vec<u8> {
        let mut v = root.to_le_bytes().to_vec();
        v.extend_from_slice(&0u64.to_le_bytes());
        v.extend(inline.unwrap_or_default());
        v
    }

    fn rev(main: u64) -> Vec<u8> {
        let mut k = main.to_be_bytes().to_vec();
        k.push(b'_');
        k.extend_from_slice(&0u64.to_be_bytes());
        k
    }

    /// Root leaf (page 2) with `key` (branch page 3 over leaves 4 and 5), inline `meta`
    /// and inline `members` buckets.
    pub(crate) fn sample_db() -> Vec<u8> {
        let meta = leaf(
            0,
            &[(0, b"consistent_index", 1234u64.to_be_bytes().to_vec())],
        );
        let member = br#"{"id":10,"peerURLs":["http://a:2380"],"name":"n1","clientURLs":[]}"#;
        let members = leaf(0, &[(0, b"a", member.to_vec())]);
        let pages = vec![
            meta_page(0, 2, 6, 7),
            meta_page(1, 2, 6, 6),
            leaf(
                2,
                &[
                    (BUCKET_FLAG, b"key", bucket_value(3, None)),
                    (BUCKET_FLAG, b"members", bucket_value(0, Some(members))),
                    (BUCKET_FLAG, b"meta", bucket_value(0, Some(meta))),
                ],
            ),
            branch(3, &[(&rev(2), 4), (&rev(5), 5)]),
            leaf(
                4,
                &[(0, &rev(2), b"a".to_vec()), (0, &rev(3), b"b".to_vec())],
            ),
            leaf(
                5,
                &[(0, &rev(5), b"c".to_vec()), (0, &rev(9), b"d".to_vec())],
            ),
        ];
        let mut file = Vec::new();
        for p in pages {
            let mut p = p;
            p.resize(PS, 0);
            file.extend(p);
        }
        file
    }

    #[test]
    fn reads_lookups_last_key_and_entries_across_branch_and_inline_pages() {
        let data = sample_db();
        let db = Bolt::open(&data, "db").unwrap();
        let key = db.bucket(b"key").unwrap().unwrap();
        assert_eq!(db.get(key, &rev(3)).unwrap(), Some(&b"b"[..]));
        assert_eq!(db.get(key, &rev(5)).unwrap(), Some(&b"c"[..]));
        assert_eq!(db.get(key, &rev(4)).unwrap(), None);
        assert_eq!(db.get(key, &rev(1)).unwrap(), None);
        assert_eq!(db.last(key).unwrap().unwrap().1, b"d");
        assert_eq!(db.entries(key).unwrap().len(), 4);
        assert!(db.bucket(b"nope").unwrap().is_none());
        let info = crate::dbinfo::read(&data, "db").unwrap();
        assert_eq!(info.consistent_index, 1234);
        assert_eq!(info.revision, 9);
        assert_eq!(info.members.len(), 1);
        assert_eq!(info.members[0].name, "n1");
    }

    #[test]
    fn the_newer_valid_meta_wins_and_a_bad_checksum_falls_back() {
        let mut data = sample_db();
        // Meta 0 (txid 7) points at a page that is not a tree page: with it damaged, meta 1
        // (txid 6) is used and the db still reads.
        data[16 + 20] ^= 0xff; // inside the root field: checksum no longer matches
        let info = crate::dbinfo::read(&data, "db").unwrap();
        assert_eq!(info.consistent_index, 1234);
        data[PS + 16 + 20] ^= 0xff;
        let err = crate::dbinfo::read(&data, "db").unwrap_err().to_string();
        assert!(err.contains("not a bbolt file"), "{err}");
    }

    #[test]
    fn damage_is_a_typed_error_never_a_panic() {
        let good = sample_db();
        // Every byte of the tree pages flipped in turn: an error or a result, never a panic.
        for at in (2 * PS)..(6 * PS) {
            if at % PS > 400 {
                continue; // past the content of the small pages
            }
            let mut d = good.clone();
            d[at] ^= 0xa5;
            let _ = crate::dbinfo::read(&d, "db");
        }
        let short = &good[..3 * PS];
        let err = crate::dbinfo::read(short, "db").unwrap_err().to_string();
        assert!(err.contains("db is damaged"), "{err}");
        let mut loop_page = good.clone();
        // Branch page 3's first child points at itself: the depth bound stops the walk.
        loop_page[3 * PS + 16 + 8..3 * PS + 16 + 16].copy_from_slice(&3u64.to_le_bytes());
        loop_page[3 * PS + 32 + 8..3 * PS + 32 + 16].copy_from_slice(&3u64.to_le_bytes());
        let err = crate::dbinfo::read(&loop_page, "db")
            .unwrap_err()
            .to_string();
        assert!(err.contains("deeper than 64"), "{err}");
        assert!(crate::dbinfo::read(b"not a db", "db").is_err());
    }
}
