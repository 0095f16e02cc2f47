//! `SELECT agg(field)[, …] FROM [db.[rp].]measurement`: the aggregate queries an operator
//! uses to see that data arrived (after a write or a restore). No WHERE, GROUP BY or raw
//! selects: anything else is refused with influx's wording.

use crate::{ParseError, Parser, Tok, Token};

/// An aggregate or selector function of a `SELECT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    /// Number of values.
    Count,
    /// Sum of numeric values.
    Sum,
    /// Mean of numeric values.
    Mean,
    /// Smallest numeric value.
    Min,
    /// Largest numeric value.
    Max,
    /// Value with the smallest timestamp.
    First,
    /// Value with the largest timestamp.
    Last,
}

impl Aggregate {
    /// The function's name as influx prints it in column headers.
    pub fn name(self) -> &'static str {
        match self {
            Aggregate::Count => "count",
            Aggregate::Sum => "sum",
            Aggregate::Mean => "mean",
            Aggregate::Min => "min",
            Aggregate::Max => "max",
            Aggregate::First => "first",
            Aggregate::Last => "last",
        }
    }

    /// Selectors return a stored value (and its time) rather than a computed one.
    pub fn is_selector(self) -> bool {
        matches!(
            self,
            Aggregate::Min | Aggregate::Max | Aggregate::First | Aggregate::Last
        )
    }

    fn parse(w: &str) -> Option<Self> {
        const ALL: [Aggregate; 7] = [
            Aggregate::Count,
            Aggregate::Sum,
            Aggregate::Mean,
            Aggregate::Min,
            Aggregate::Max,
            Aggregate::First,
            Aggregate::Last,
        ];
        ALL.into_iter().find(|a| a.name().eq_ignore_ascii_case(w))
    }
}

/// One `agg(field)` of a `SELECT`; `field` is `None` for `*` (every field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The function.
    pub aggregate: Aggregate,
    /// The field, or `None` for `*`.
    pub field: Option<String>,
}

/// The `FROM` part: `measurement`, `rp.measurement`, `db..measurement` or `db.rp.measurement`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Database, when named (else the request's `db` parameter).
    pub database: Option<String>,
    /// Retention policy, when named (else the database's default).
    pub retention_policy: Option<String>,
    /// Measurement.
    pub measurement: String,
}

impl Parser {
    /// After `SELECT`: the calls, `FROM`, the source.
    pub(crate) fn select(&mut self) -> Result<(Vec<Call>, Source), ParseError> {
        let mut calls = vec![self.call()?];
        while self.eat_other(',') {
            calls.push(self.call()?);
        }
        self.expect_kw("FROM")?;
        let source = self.source()?;
        Ok((calls, source))
    }

    fn call(&mut self) -> Result<Call, ParseError> {
        let aggregate = match self.peek().map(|t| t.tok.clone()) {
            Some(Tok::Word(w)) => Aggregate::parse(&w),
            _ => None,
        }
        .ok_or_else(|| self.err("count, sum, mean, min, max, first, last"))?;
        self.at += 1;
        if !self.eat_other('(') {
            return Err(self.err("("));
        }
        let field = if self.eat_other('*') {
            None
        } else {
            Some(self.field_name()?)
        };
        if !self.eat_other(')') {
            return Err(self.err(")"));
        }
        Ok(Call { aggregate, field })
    }

    /// A field or measurement name: reserved words are fine here (influx allows `"time"`-like
    /// names only quoted, which the lexer already handles).
    fn field_name(&mut self) -> Result<String, ParseError> {
        self.name(true)
    }

    fn source(&mut self) -> Result<Source, ParseError> {
        let mut parts = vec![Some(self.field_name()?)];
        while self.eat_other('.') {
            if parts.len() == 3 {
                return Err(self.err("FROM source of at most 3 parts"));
            }
            if matches!(
                self.peek(),
                Some(Token {
                    tok: Tok::Other('.'),
                    ..
                })
            ) {
                parts.push(None);
            } else {
                parts.push(Some(self.field_name()?));
            }
        }
        let measurement = parts
            .pop()
            .flatten()
            .ok_or_else(|| self.err("measurement"))?;
        let (database, retention_policy) = match parts.len() {
            0 => (None, None),
            1 => (None, parts.pop().flatten()),
            _ => {
                let rp = parts.pop().flatten();
                (parts.pop().flatten(), rp)
            }
        };
        Ok(Source {
            database,
            retention_policy,
            measurement,
        })
    }

    fn eat_other(&mut self, c: char) -> bool {
        if matches!(self.peek(), Some(Token { tok: Tok::Other(o), .. }) if *o == c) {
            self.at += 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{Statement, parse};

    fn select(q: &str) -> (Vec<Call>, Source) {
        match parse(q).unwrap().remove(0) {
            Statement::Select { calls, source } => (calls, source),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sources_of_one_two_and_three_parts() {
        let (_, s) = select("SELECT count(usage) FROM cpu");
        assert_eq!((s.database, s.retention_policy), (None, None));
        let (_, s) = select("SELECT count(usage) FROM demo..cpu");
        assert_eq!(s.database.as_deref(), Some("demo"));
        assert_eq!(s.retention_policy, None);
        let (_, s) = select("select COUNT(usage) from demo.autogen.\"my cpu\"");
        assert_eq!(s.retention_policy.as_deref(), Some("autogen"));
        assert_eq!(s.measurement, "my cpu");
        let (_, s) = select("SELECT last(v) FROM weekly.cpu");
        assert_eq!(
            (s.database, s.retention_policy.as_deref()),
            (None, Some("weekly"))
        );
    }

    #[test]
    fn several_calls_and_star() {
        let (c, _) = select("SELECT count(*), sum(usage), last(\"name\") FROM cpu;");
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].field, None);
        assert_eq!(c[1].aggregate, Aggregate::Sum);
        assert_eq!(c[2].field.as_deref(), Some("name"));
    }

    #[test]
    fn unsupported_shapes_are_refused() {
        for q in [
            "SELECT usage FROM cpu",
            "SELECT count(usage) FROM cpu WHERE time > 0",
            "SELECT median(usage) FROM cpu",
            "SELECT count(usage FROM cpu",
            "SELECT count(usage)",
            "SELECT count(usage) FROM a.b.c.d",
        ] {
            assert!(parse(q).is_err(), "{q}");
        }
    }
}
