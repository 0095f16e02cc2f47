//! A parser for the few InfluxQL statements an operator needs to set up and inspect a store:
//! `CREATE DATABASE`, `CREATE RETENTION POLICY`, `DROP DATABASE`, `SHOW DATABASES`,
//! `SHOW RETENTION POLICIES`, `SHOW SHARDS`, and aggregate `SELECT`s to check what a
//! measurement holds; errors worded like influx's.
//!
//! ```
//! use snapshotd_influxql::{Statement, parse};
//!
//! let stmts = parse("CREATE DATABASE telegraf; SHOW DATABASES").unwrap();
//! assert_eq!(stmts[1], Statement::ShowDatabases);
//! assert!(parse("CREATE TABLE x").is_err());
//! ```

use std::time::Duration;

mod select;

pub use select::{Aggregate, Call, Source};

/// One parsed statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement {
    /// `CREATE DATABASE name [WITH [DURATION d] [REPLICATION n] [SHARD DURATION d] [NAME rp]]`.
    CreateDatabase {
        /// Database name.
        name: String,
        /// Retention-policy clause, when `WITH` was given.
        with: Option<RpClause>,
    },
    /// `CREATE RETENTION POLICY rp ON db DURATION d REPLICATION n [SHARD DURATION d] [DEFAULT]`.
    CreateRetentionPolicy {
        /// Policy name.
        name: String,
        /// Database.
        database: String,
        /// Duration (zero = infinite).
        duration: Duration,
        /// Replication factor.
        replication: u32,
        /// Shard group duration (zero = derived).
        shard_duration: Duration,
        /// Make it the default policy.
        default: bool,
    },
    /// `DROP DATABASE name`.
    DropDatabase {
        /// Database name.
        name: String,
    },
    /// `SHOW DATABASES`.
    ShowDatabases,
    /// `SHOW RETENTION POLICIES [ON db]`.
    ShowRetentionPolicies {
        /// Database, when `ON` was given.
        database: Option<String>,
    },
    /// `SHOW SHARDS`.
    ShowShards,
    /// `SELECT agg(field)[, …] FROM [db.[rp].]measurement`.
    Select {
        /// The aggregate calls, in order.
        calls: Vec<Call>,
        /// The measurement and where it lives.
        source: Source,
    },
}

/// The `WITH …` part of `CREATE DATABASE`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RpClause {
    /// `DURATION`.
    pub duration: Option<Duration>,
    /// `REPLICATION`.
    pub replication: Option<u32>,
    /// `SHARD DURATION`.
    pub shard_duration: Option<Duration>,
    /// `NAME`.
    pub name: Option<String>,
}

/// A parse failure, worded like influx's (`found X, expected Y at line 1, char N`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{msg}")]
pub struct ParseError {
    msg: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Quoted(String),
    Number(String),
    Semi,
    Other(char),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    pos: usize,
}

fn lex(q: &str) -> Result<Vec<Token>, ParseError> {
    let mut out = Vec::new();
    let chars: Vec<char> = q.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let pos = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c == ';' {
            out.push(Token {
                tok: Tok::Semi,
                pos,
            });
            i += 1;
        } else if c == '"' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(ParseError {
                            msg: format!(
                                "found unterminated quoted identifier at line 1, char {pos}"
                            ),
                        });
                    }
                    Some('\\') if matches!(chars.get(i + 1), Some('"') | Some('\\')) => {
                        if let Some(n) = chars.get(i + 1) {
                            s.push(*n);
                        }
                        i += 2;
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        s.push(*ch);
                        i += 1;
                    }
                }
            }
            out.push(Token {
                tok: Tok::Quoted(s),
                pos,
            });
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == 'µ') {
                i += 1;
            }
            out.push(Token {
                tok: Tok::Number(chars[start..i].iter().collect()),
                pos,
            });
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token {
                tok: Tok::Word(chars[start..i].iter().collect()),
                pos,
            });
        } else {
            out.push(Token {
                tok: Tok::Other(c),
                pos,
            });
            i += 1;
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Token>,
    at: usize,
    end_pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.at)
    }

    fn found(&self) -> (String, usize) {
        match self.peek() {
            None => ("EOF".to_string(), self.end_pos),
            Some(t) => (
                match &t.tok {
                    Tok::Word(w) => w.clone(),
                    Tok::Quoted(s) => s.clone(),
                    Tok::Number(n) => n.clone(),
                    Tok::Semi => ";".to_string(),
                    Tok::Other(c) => c.to_string(),
                },
                t.pos,
            ),
        }
    }

    fn err(&self, expected: &str) -> ParseError {
        let (found, pos) = self.found();
        ParseError {
            msg: format!("found {found}, expected {expected} at line 1, char {pos}"),
        }
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Token { tok: Tok::Word(w), .. }) if w.eq_ignore_ascii_case(kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.is_kw(kw) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), ParseError> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.err(kw))
        }
    }

    fn ident(&mut self) -> Result<String, ParseError> {
        self.name(false)
    }

    /// A word or non-empty quoted name; a reserved word only when `reserved_ok`.
    fn name(&mut self, reserved_ok: bool) -> Result<String, ParseError> {
        match self.peek().map(|t| t.tok.clone()) {
            Some(Tok::Word(w)) if reserved_ok || !is_reserved(&w) => {
                self.at += 1;
                Ok(w)
            }
            Some(Tok::Quoted(s)) if !s.is_empty() => {
                self.at += 1;
                Ok(s)
            }
            _ => Err(self.err("identifier")),
        }
    }

    fn duration(&mut self) -> Result<Duration, ParseError> {
        match self.peek().map(|t| t.tok.clone()) {
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("INF") => {
                self.at += 1;
                Ok(Duration::ZERO)
            }
            Some(Tok::Number(n)) => match parse_duration(&n) {
                Some(d) => {
                    self.at += 1;
                    Ok(d)
                }
                None => Err(self.err("duration")),
            },
            _ => Err(self.err("duration")),
        }
    }

    fn integer(&mut self) -> Result<u32, ParseError> {
        match self.peek().map(|t| t.tok.clone()) {
            Some(Tok::Number(n)) => match n.parse::<u32>() {
                Ok(v) if v >= 1 => {
                    self.at += 1;
                    Ok(v)
                }
                _ => Err(self.err("integer >= 1")),
            },
            _ => Err(self.err("integer")),
        }
    }

    fn statement(&mut self) -> Result<Statement, ParseError> {
        if self.eat_kw("CREATE") {
            if self.eat_kw("DATABASE") {
                return self.create_database();
            }
            if self.eat_kw("RETENTION") {
                self.expect_kw("POLICY")?;
                return self.create_rp();
            }
            return Err(self.err("DATABASE, RETENTION"));
        }
        if self.eat_kw("DROP") {
            self.expect_kw("DATABASE")?;
            let name = self.ident()?;
            return Ok(Statement::DropDatabase { name });
        }
        if self.eat_kw("SHOW") {
            if self.eat_kw("DATABASES") {
                return Ok(Statement::ShowDatabases);
            }
            if self.eat_kw("SHARDS") {
                return Ok(Statement::ShowShards);
            }
            if self.eat_kw("RETENTION") {
                self.expect_kw("POLICIES")?;
                let database = if self.eat_kw("ON") {
                    Some(self.ident()?)
                } else {
                    None
                };
                return Ok(Statement::ShowRetentionPolicies { database });
            }
            return Err(self.err("DATABASES, RETENTION, SHARDS"));
        }
        if self.eat_kw("SELECT") {
            let (calls, source) = self.select()?;
            return Ok(Statement::Select { calls, source });
        }
        Err(self.err("CREATE, DROP, SELECT, SHOW"))
    }

    fn create_database(&mut self) -> Result<Statement, ParseError> {
        let name = self.ident()?;
        if !self.eat_kw("WITH") {
            return Ok(Statement::CreateDatabase { name, with: None });
        }
        let mut rp = RpClause::default();
        let mut any = false;
        loop {
            if rp.duration.is_none() && self.eat_kw("DURATION") {
                rp.duration = Some(self.duration()?);
            } else if rp.replication.is_none() && self.eat_kw("REPLICATION") {
                rp.replication = Some(self.integer()?);
            } else if rp.shard_duration.is_none() && self.eat_kw("SHARD") {
                self.expect_kw("DURATION")?;
                rp.shard_duration = Some(self.duration()?);
            } else if rp.name.is_none() && self.eat_kw("NAME") {
                rp.name = Some(self.ident()?);
            } else {
                break;
            }
            any = true;
        }
        if !any {
            return Err(self.err("DURATION, NAME, REPLICATION, SHARD"));
        }
        Ok(Statement::CreateDatabase {
            name,
            with: Some(rp),
        })
    }

    fn create_rp(&mut self) -> Result<Statement, ParseError> {
        let name = self.ident()?;
        self.expect_kw("ON")?;
        let database = self.ident()?;
        let mut duration = None;
        let mut replication = None;
        let mut shard_duration = Duration::ZERO;
        let mut default = false;
        loop {
            if duration.is_none() && self.eat_kw("DURATION") {
                duration = Some(self.duration()?);
            } else if replication.is_none() && self.eat_kw("REPLICATION") {
                replication = Some(self.integer()?);
            } else if self.eat_kw("SHARD") {
                self.expect_kw("DURATION")?;
                shard_duration = self.duration()?;
            } else if !default && self.eat_kw("DEFAULT") {
                default = true;
            } else {
                break;
            }
        }
        let Some(duration) = duration else {
            return Err(self.err("DURATION"));
        };
        let Some(replication) = replication else {
            return Err(self.err("REPLICATION"));
        };
        Ok(Statement::CreateRetentionPolicy {
            name,
            database,
            duration,
            replication,
            shard_duration,
            default,
        })
    }
}

fn is_reserved(w: &str) -> bool {
    const KW: &[&str] = &[
        "CREATE",
        "DATABASE",
        "DATABASES",
        "DEFAULT",
        "DROP",
        "DURATION",
        "FROM",
        "NAME",
        "ON",
        "POLICIES",
        "POLICY",
        "REPLICATION",
        "RETENTION",
        "SHARD",
        "SELECT",
        "SHARDS",
        "SHOW",
        "WITH",
    ];
    KW.iter().any(|k| k.eq_ignore_ascii_case(w))
}

/// Parses an InfluxQL duration literal such as `1h`, `520w`, `1h30m`, `500ms`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let mut total: u128 = 0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: u128 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit())
            .map_or(rest.len(), |(i, _)| i);
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let ns: u128 = match unit {
            "ns" => 1,
            "u" | "µ" | "us" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "d" => 86_400_000_000_000,
            "w" => 604_800_000_000_000,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(ns)?)?;
    }
    let total = u64::try_from(total)
        .ok()
        .filter(|t| *t <= i64::MAX as u64)?;
    Some(Duration::from_nanos(total))
}

/// Parses `;`-separated statements.
pub fn parse(q: &str) -> Result<Vec<Statement>, ParseError> {
    let toks = lex(q)?;
    let mut p = Parser {
        toks,
        at: 0,
        end_pos: q.chars().count() + 1,
    };
    let mut out = Vec::new();
    loop {
        while matches!(p.peek(), Some(Token { tok: Tok::Semi, .. })) {
            p.at += 1;
        }
        if p.peek().is_none() {
            break;
        }
        out.push(p.statement()?);
        match p.peek() {
            None => break,
            Some(Token { tok: Tok::Semi, .. }) => {}
            Some(_) => return Err(p.err(";")),
        }
    }
    if out.is_empty() {
        return Err(ParseError {
            msg: "found EOF, expected CREATE, DROP, SELECT, SHOW at line 1, char 1".to_string(),
        });
    }
    Ok(out)
}

/// Formats a duration the way Go's `time.Duration.String` does for whole seconds and above.
pub fn go_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let nanos = d.subsec_nanos();
    if secs == 0 && nanos == 0 {
        return "0s".to_string();
    }
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let sec = if nanos == 0 {
        format!("{s}s")
    } else {
        let frac = format!("{nanos:09}");
        format!("{s}.{}s", frac.trim_end_matches('0'))
    };
    if h > 0 {
        format!("{h}h{m}m{sec}")
    } else if m > 0 {
        format!("{m}m{sec}")
    } else {
        sec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_operator_statements() {
        let got = parse(
            "CREATE DATABASE db2; create retention policy rp2 ON db2 DURATION 520w REPLICATION 1 SHARD DURATION 1d DEFAULT",
        )
        .unwrap();
        assert_eq!(
            got[0],
            Statement::CreateDatabase {
                name: "db2".into(),
                with: None
            }
        );
        assert_eq!(
            got[1],
            Statement::CreateRetentionPolicy {
                name: "rp2".into(),
                database: "db2".into(),
                duration: Duration::from_secs(520 * 7 * 86400),
                replication: 1,
                shard_duration: Duration::from_secs(86400),
                default: true,
            }
        );
        let with = parse("CREATE DATABASE \"my db\" WITH DURATION INF NAME r1").unwrap();
        assert_eq!(
            with[0],
            Statement::CreateDatabase {
                name: "my db".into(),
                with: Some(RpClause {
                    duration: Some(Duration::ZERO),
                    name: Some("r1".into()),
                    ..RpClause::default()
                })
            }
        );
        assert_eq!(
            parse("show retention policies on db1").unwrap(),
            vec![Statement::ShowRetentionPolicies {
                database: Some("db1".into())
            }]
        );
        assert_eq!(parse("SHOW SHARDS;").unwrap(), vec![Statement::ShowShards]);
    }

    #[test]
    fn rejects_other_statements_with_influx_wording() {
        let e = parse("INSERT cpu v=1").unwrap_err();
        assert_eq!(
            e.to_string(),
            "found INSERT, expected CREATE, DROP, SELECT, SHOW at line 1, char 1"
        );
        let e = parse("SELECT * FROM cpu").unwrap_err();
        assert_eq!(
            e.to_string(),
            "found *, expected count, sum, mean, min, max, first, last at line 1, char 8"
        );
        let e = parse("CREATE RETENTION POLICY r ON d REPLICATION 1").unwrap_err();
        assert!(e.to_string().contains("expected DURATION"), "{e}");
        assert!(parse("DROP DATABASE").is_err());
        assert!(parse("CREATE DATABASE x WITH").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("7x"), None);
        assert_eq!(parse_duration("99999999999999999999w"), None);
        assert_eq!(go_duration(Duration::from_secs(168 * 3600)), "168h0m0s");
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
    }
}
