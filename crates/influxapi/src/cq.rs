//! Continuous query text rewritten for a renamed database: the `ON <db>` of the header and
//! every fully qualified `<db>.<rp>.<measurement>` (or `<db>..<measurement>`) reference.

use crate::http::quote_ident;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// An identifier: its unquoted name and whether it was written quoted.
    Ident(String, bool),
    /// Anything else, copied as written (strings, regexes, punctuation, spaces).
    Other(String),
}

/// `query` with database `old` renamed to `new` where it names the database.
pub fn rewrite_cq(query: &str, old: &str, new: &str) -> String {
    if old == new {
        return query.to_string();
    }
    let toks = tokenize(query);
    let mut out = String::with_capacity(query.len() + new.len());
    let mut seen_on = false;
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::Ident(name, quoted) => {
                let after_on =
                    !seen_on && prev_word(&toks, i).is_some_and(|w| w.eq_ignore_ascii_case("on"));

                let replace = name == old && (after_on || is_db_qualifier(&toks, i));
                if after_on {
                    seen_on = true;
                }
                let (n, q) = if replace {
                    (new, *quoted)
                } else {
                    (name.as_str(), *quoted)
                };
                if q || !bare_ok(n) {
                    out.push_str(&quote_ident(n));
                } else {
                    out.push_str(n);
                }
            }
            Tok::Other(s) => out.push_str(s),
        }
    }
    out
}

/// Text for comparing two CQ definitions: quotes dropped, whitespace collapsed.
pub fn canonical(q: &str) -> String {
    q.replace('"', "")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn bare_ok(n: &str) -> bool {
    let mut c = n.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// The previous identifier, skipping whitespace.
fn prev_word(toks: &[Tok], i: usize) -> Option<&str> {
    for t in toks[..i].iter().rev() {
        match t {
            Tok::Other(s) if s.trim().is_empty() => continue,
            Tok::Ident(n, false) => return Some(n),
            _ => return None,
        }
    }
    None
}

/// Whether identifier `i` is the first part of `db.rp.m` or `db..m`.
fn is_db_qualifier(toks: &[Tok], i: usize) -> bool {
    let dot = |j: usize| matches!(toks.get(j), Some(Tok::Other(s)) if s == ".");
    if i > 0 && dot(i - 1) {
        return false;
    }
    dot(i + 1) && (dot(i + 2) || (matches!(toks.get(i + 2), Some(Tok::Ident(..))) && dot(i + 3)))
}

/// A `/` starts a regex after `FROM`, `,`, `=~` or `!~`; otherwise it divides.
fn regex_may_start(toks: &[Tok]) -> bool {
    let last = toks
        .iter()
        .rev()
        .find(|t| !matches!(t, Tok::Other(s) if s.trim().is_empty()));
    match last {
        Some(Tok::Ident(n, false)) => n.eq_ignore_ascii_case("from"),
        Some(Tok::Other(s)) => s == "," || s == "~",
        _ => false,
    }
}

fn tokenize(q: &str) -> Vec<Tok> {
    let b: Vec<char> = q.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_alphabetic() || c == '_' {
            let s = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == '_') {
                i += 1;
            }
            toks.push(Tok::Ident(b[s..i].iter().collect(), false));
        } else if c == '"' {
            let mut name = String::new();
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' && i + 1 < b.len() {
                    i += 1;
                }
                name.push(b[i]);
                i += 1;
            }
            i += 1;
            toks.push(Tok::Ident(name, true));
        } else if c == '\'' || (c == '/' && regex_may_start(&toks)) {
            // String literal or regex: copied verbatim up to the closing delimiter.
            let s = i;
            i += 1;
            while i < b.len() && b[i] != c {
                if b[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i = (i + 1).min(b.len());
            toks.push(Tok::Other(b[s..i].iter().collect()));
        } else if c.is_ascii_digit() {
            let s = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == '.') {
                i += 1;
            }
            toks.push(Tok::Other(b[s..i].iter().collect()));
        } else {
            toks.push(Tok::Other(c.to_string()));
            i += 1;
        }
    }
    toks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_header_and_qualified_names_only() {
        let q = "CREATE CONTINUOUS QUERY cq1 ON db1 BEGIN SELECT mean(value) INTO db1.autogen.m1h \
                 FROM db1.\"rp 2\".cpu, db1..mem, db1.cpu WHERE host = 'db1.x' GROUP BY time(1h) END";
        assert_eq!(
            rewrite_cq(q, "db1", "new db"),
            "CREATE CONTINUOUS QUERY cq1 ON \"new db\" BEGIN SELECT mean(value) INTO \"new db\".autogen.m1h \
             FROM \"new db\".\"rp 2\".cpu, \"new db\"..mem, db1.cpu WHERE host = 'db1.x' GROUP BY time(1h) END"
        );
        let q2 = "CREATE CONTINUOUS QUERY \"c\" ON \"d\" RESAMPLE EVERY 1m BEGIN SELECT count(v) INTO m FROM /d.*/ GROUP BY time(5m) END";
        assert_eq!(
            rewrite_cq(q2, "d", "e"),
            "CREATE CONTINUOUS QUERY \"c\" ON \"e\" RESAMPLE EVERY 1m BEGIN SELECT count(v) INTO m FROM /d.*/ GROUP BY time(5m) END"
        );
        assert_eq!(canonical("A  \"b\"\n c"), "A b c");
    }
}
