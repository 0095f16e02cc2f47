//! Incremental search for the end of one top-level JSON object in a growing buffer.
//!
//! Only brackets and strings are tracked (validation is left to serde_json once the object is
//! complete); the scanner remembers where it stopped so feeding a frame byte by byte stays
//! linear.

/// Outcome of one scan step.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Scan {
    /// The object ends at this index (of its closing `}`) relative to the scanned slice.
    Complete(usize),
    /// More bytes are needed.
    Incomplete,
    /// The first non-whitespace byte is not `{`.
    NotObject {
        /// The byte.
        found: u8,
        /// Its offset in the slice.
        offset: usize,
    },
}

/// Resumable scanner state.
#[derive(Debug, Default, Clone)]
pub(crate) struct JsonScan {
    pos: usize,
    depth: usize,
    in_string: bool,
    escape: bool,
}

impl JsonScan {
    /// Bytes examined so far.
    pub(crate) fn scanned(&self) -> usize {
        self.pos
    }

    /// Continues scanning `buf` (the same logical slice as before, possibly longer).
    pub(crate) fn scan(&mut self, buf: &[u8]) -> Scan {
        while let Some(&b) = buf.get(self.pos) {
            let at = self.pos;
            self.pos += 1;
            if self.in_string {
                if self.escape {
                    self.escape = false;
                } else if b == b'\\' {
                    self.escape = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            if self.depth == 0 {
                match b {
                    b' ' | b'\t' | b'\r' | b'\n' => continue,
                    b'{' => {
                        self.depth = 1;
                        continue;
                    }
                    found => return Scan::NotObject { found, offset: at },
                }
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        return Scan::Complete(at);
                    }
                }
                _ => {}
            }
        }
        Scan::Incomplete
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_end_across_feeds() {
        let doc = br#"  {"a":"}{\"","b":[1,{"c":2}]} tail"#;
        let mut s = JsonScan::default();
        let mut res = Scan::Incomplete;
        for n in 0..=doc.len() {
            res = s.scan(&doc[..n]);
            if res != Scan::Incomplete {
                break;
            }
        }
        let end = doc.iter().position(|&b| b == b't').unwrap() - 2;
        assert_eq!(res, Scan::Complete(end));
    }

    #[test]
    fn rejects_non_object() {
        let mut s = JsonScan::default();
        assert_eq!(
            s.scan(b" [1]"),
            Scan::NotObject {
                found: b'[',
                offset: 1
            }
        );
    }
}
