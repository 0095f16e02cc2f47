//! Go `encoding/json` compatibility: exact output bytes and Go's key matching on input.

use std::io;

use serde::Serialize;
use serde_json::ser::{CharEscape, CompactFormatter, Formatter, PrettyFormatter};

/// A serde_json formatter that escapes strings the way Go's `encoding/json` does
/// (`<`, `>`, `&`, U+2028, U+2029 as `\u00XX`/`\u20XX`; backspace and form feed as `\u0008`,
/// `\u000c` like the Go releases influx 1.x is built with), delegating layout to `F`.
struct GoFormatter<F>(F);

macro_rules! delegate {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {
        $(fn $name<W: ?Sized + io::Write>(&mut self, w: &mut W $(, $arg: $ty)*) -> io::Result<()> {
            self.0.$name(w $(, $arg)*)
        })*
    };
}

impl<F: Formatter> Formatter for GoFormatter<F> {
    delegate! {
        begin_array();
        end_array();
        begin_array_value(first: bool);
        end_array_value();
        begin_object();
        end_object();
        begin_object_key(first: bool);
        end_object_key();
        begin_object_value();
        end_object_value();
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let esc: &[u8] = match c {
                '<' => b"\\u003c",
                '>' => b"\\u003e",
                '&' => b"\\u0026",
                '\u{2028}' => b"\\u2028",
                '\u{2029}' => b"\\u2029",
                _ => continue,
            };
            w.write_all(&fragment.as_bytes()[start..i])?;
            w.write_all(esc)?;
            start = i + c.len_utf8();
        }
        w.write_all(&fragment.as_bytes()[start..])
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        e: CharEscape,
    ) -> io::Result<()> {
        match e {
            CharEscape::Backspace => w.write_all(b"\\u0008"),
            CharEscape::FormFeed => w.write_all(b"\\u000c"),
            other => self.0.write_char_escape(w, other),
        }
    }
}

/// Go `json.Marshal` (compact) of `v`, appended to `out`.
pub(crate) fn marshal_into<T: Serialize + ?Sized>(
    v: &T,
    out: &mut Vec<u8>,
) -> Result<(), serde_json::Error> {
    let mut ser = serde_json::Serializer::with_formatter(out, GoFormatter(CompactFormatter));
    v.serialize(&mut ser)
}

/// Go `json.MarshalIndent(v, "", "  ")`: two-space indent, no trailing newline.
pub(crate) fn marshal_indent<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::new();
    let fmt = GoFormatter(PrettyFormatter::with_indent(b"  "));
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    v.serialize(&mut ser)?;
    Ok(out)
}

/// Go's case-insensitive key match (`encoding/json` folds keys with Unicode simple folding,
/// so `shardid`, `SHARDID` and `ſhardID`-style spellings all select the same field).
pub(crate) fn key_matches(key: &str, field: &str) -> bool {
    key == field || {
        let mut a = key.chars().flat_map(fold);
        let mut b = field.chars().flat_map(fold);
        loop {
            match (a.next(), b.next()) {
                (None, None) => break true,
                (x, y) if x == y => continue,
                _ => break false,
            }
        }
    }
}

fn fold(c: char) -> impl Iterator<Item = char> {
    c.to_uppercase().flat_map(char::to_lowercase)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_go() {
        let mut v = Vec::new();
        marshal_into("a<b>&\u{2028}\"\\\n\u{8}\u{c}\u{1}é", &mut v).unwrap();
        assert_eq!(
            String::from_utf8(v).unwrap(),
            r#""a\u003cb\u003e\u0026\u2028\"\\\n\u0008\u000c\u0001é""#
        );
    }

    #[test]
    fn folds_keys() {
        assert!(key_matches("shardid", "ShardID"));
        assert!(key_matches("SHARDID", "ShardID"));
        assert!(key_matches("\u{17f}ince", "Since"));
        assert!(!key_matches("ShardIDs", "ShardID"));
        assert!(!key_matches("Shard_ID", "ShardID"));
    }
}
