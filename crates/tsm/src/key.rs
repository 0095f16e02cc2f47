//! Composite TSM keys: `<series key>#!~#<field>`.

/// The separator between the series key and the field name.
pub const FIELD_SEPARATOR: &[u8] = b"#!~#";

/// Splits a TSM key at the first `#!~#` into (series key, field); a key without the separator
/// is all series with an empty field.
pub fn split_key(key: &[u8]) -> (&[u8], &[u8]) {
    match key
        .windows(FIELD_SEPARATOR.len())
        .position(|w| w == FIELD_SEPARATOR)
    {
        Some(i) => (&key[..i], &key[i + FIELD_SEPARATOR.len()..]),
        None => (key, &[]),
    }
}

/// Joins a series key and a field name into a TSM key.
pub fn join_key(series: &[u8], field: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(series.len() + FIELD_SEPARATOR.len() + field.len());
    k.extend_from_slice(series);
    k.extend_from_slice(FIELD_SEPARATOR);
    k.extend_from_slice(field);
    k
}

/// Builds the escaped series key `measurement,k1=v1,k2=v2` (tags sorted by key) from unescaped
/// parts, escaping as line protocol does (`,` and space in measurements; `,`, `=` and space in
/// tag keys and values).
pub fn series_key(measurement: &str, tags: &[(&str, &str)]) -> String {
    let mut tags: Vec<&(&str, &str)> = tags.iter().collect();
    tags.sort_by(|a, b| a.0.cmp(b.0));
    let mut s = String::with_capacity(measurement.len() + 16 * tags.len());
    escape_into(&mut s, measurement, &[',', ' ']);
    for (k, v) in tags {
        s.push(',');
        escape_into(&mut s, k, &[',', '=', ' ']);
        s.push('=');
        escape_into(&mut s, v, &[',', '=', ' ']);
    }
    s
}

fn escape_into(out: &mut String, text: &str, special: &[char]) {
    for c in text.chars() {
        if special.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Splits an escaped series key into its unescaped measurement and tags (in key order).
/// Returns `None` when a tag has no `=`.
pub fn parse_series_key(series: &str) -> Option<(String, Vec<(String, String)>)> {
    let mut parts = split_unescaped(series, ',').into_iter();
    let measurement = unescape(parts.next()?);
    let mut tags = Vec::new();
    for p in parts {
        let kv = split_unescaped(p, '=');
        let [k, v] = kv.as_slice() else { return None };
        tags.push((unescape(k), unescape(v)));
    }
    Some((measurement, tags))
}

fn split_unescaped(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            out.push(&s[start..i]);
            start = i + 1;
        }
    }
    out.push(&s[start..]);
    out
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some(&n)) if matches!(n, ',' | '=' | ' ' | '\\') => {
                out.push(n);
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split_join_and_escape() {
        let k = join_key(b"cpu,host=h0,region=eu", b"value");
        assert_eq!(k, b"cpu,host=h0,region=eu#!~#value");
        assert_eq!(
            split_key(&k),
            (&b"cpu,host=h0,region=eu"[..], &b"value"[..])
        );
        assert_eq!(split_key(b"x#!~#a#!~#b"), (&b"x"[..], &b"a#!~#b"[..]));
        assert_eq!(split_key(b"plain"), (&b"plain"[..], &b""[..]));
        let s = series_key("my cpu", &[("z", "1"), ("a b", "x,y=z")]);
        assert_eq!(s, r"my\ cpu,a\ b=x\,y\=z,z=1");
        let (m, tags) = parse_series_key(&s).unwrap_or_default();
        assert_eq!(m, "my cpu");
        assert_eq!(
            tags,
            vec![("a b".into(), "x,y=z".into()), ("z".into(), "1".into())]
        );
        assert_eq!(parse_series_key("m,novalue"), None);
    }
}
