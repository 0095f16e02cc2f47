//! The typed value model: one key's points, all of one type.

use std::fmt;

/// The type byte of a block and of its index key section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum BlockType {
    /// 64-bit IEEE float (type byte 0).
    Float,
    /// Signed 64-bit integer (type byte 1).
    Integer,
    /// Boolean (type byte 2).
    Boolean,
    /// UTF-8 string (type byte 3).
    String,
    /// Unsigned 64-bit integer (type byte 4).
    Unsigned,
}

impl BlockType {
    /// The byte stored in blocks and the index.
    pub fn byte(self) -> u8 {
        match self {
            BlockType::Float => 0,
            BlockType::Integer => 1,
            BlockType::Boolean => 2,
            BlockType::String => 3,
            BlockType::Unsigned => 4,
        }
    }

    /// The type for a stored byte, `None` for an unknown one.
    pub fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0 => BlockType::Float,
            1 => BlockType::Integer,
            2 => BlockType::Boolean,
            3 => BlockType::String,
            4 => BlockType::Unsigned,
            _ => return None,
        })
    }
}

impl fmt::Display for BlockType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BlockType::Float => "float",
            BlockType::Integer => "integer",
            BlockType::Boolean => "boolean",
            BlockType::String => "string",
            BlockType::Unsigned => "unsigned",
        })
    }
}

/// The (time ns, value) points of one key, all of one type, in time order.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// Float points.
    Float(Vec<(i64, f64)>),
    /// Signed integer points.
    Integer(Vec<(i64, i64)>),
    /// Unsigned integer points.
    Unsigned(Vec<(i64, u64)>),
    /// Boolean points.
    Boolean(Vec<(i64, bool)>),
    /// String points.
    String(Vec<(i64, String)>),
}

/// Applies `$body` to the inner vector of any [`Values`] variant.
macro_rules! each {
    ($v:expr, $x:ident => $body:expr) => {
        match $v {
            Values::Float($x) => $body,
            Values::Integer($x) => $body,
            Values::Unsigned($x) => $body,
            Values::Boolean($x) => $body,
            Values::String($x) => $body,
        }
    };
}

impl Values {
    /// The block type these values are stored as.
    pub fn block_type(&self) -> BlockType {
        match self {
            Values::Float(_) => BlockType::Float,
            Values::Integer(_) => BlockType::Integer,
            Values::Unsigned(_) => BlockType::Unsigned,
            Values::Boolean(_) => BlockType::Boolean,
            Values::String(_) => BlockType::String,
        }
    }

    /// An empty vector of the given type.
    pub fn empty(t: BlockType) -> Self {
        match t {
            BlockType::Float => Values::Float(Vec::new()),
            BlockType::Integer => Values::Integer(Vec::new()),
            BlockType::Unsigned => Values::Unsigned(Vec::new()),
            BlockType::Boolean => Values::Boolean(Vec::new()),
            BlockType::String => Values::String(Vec::new()),
        }
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        each!(self, v => v.len())
    }

    /// Whether there are no points.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The time of point `i`.
    pub fn time(&self, i: usize) -> Option<i64> {
        each!(self, v => v.get(i).map(|p| p.0))
    }

    /// Keeps only the points whose time satisfies `keep`.
    pub fn retain_times(&mut self, mut keep: impl FnMut(i64) -> bool) {
        each!(self, v => v.retain(|p| keep(p.0)))
    }

    /// Appends `other` (same type) to `self`; returns `other` back when the types differ.
    pub fn append(&mut self, other: Values) -> Result<(), Values> {
        match (self, other) {
            (Values::Float(a), Values::Float(b)) => a.extend(b),
            (Values::Integer(a), Values::Integer(b)) => a.extend(b),
            (Values::Unsigned(a), Values::Unsigned(b)) => a.extend(b),
            (Values::Boolean(a), Values::Boolean(b)) => a.extend(b),
            (Values::String(a), Values::String(b)) => a.extend(b),
            (_, b) => return Err(b),
        }
        Ok(())
    }

    /// The points `[from, to)` (clamped to the points present) as a new vector of the same type.
    pub fn slice(&self, from: usize, to: usize) -> Values {
        let to = to.min(self.len());
        let from = from.min(to);
        match self {
            Values::Float(v) => Values::Float(v[from..to].to_vec()),
            Values::Integer(v) => Values::Integer(v[from..to].to_vec()),
            Values::Unsigned(v) => Values::Unsigned(v[from..to].to_vec()),
            Values::Boolean(v) => Values::Boolean(v[from..to].to_vec()),
            Values::String(v) => Values::String(v[from..to].to_vec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_helpers() {
        let mut v = Values::Integer(vec![(1, 10), (2, 20), (3, 30)]);
        assert_eq!(v.slice(1, 99), Values::Integer(vec![(2, 20), (3, 30)]));
        assert_eq!(v.slice(5, 2), Values::Integer(vec![]));
        assert_eq!(
            v.append(Values::Float(vec![(4, 1.0)])),
            Err(Values::Float(vec![(4, 1.0)]))
        );
        assert_eq!(v.append(Values::Integer(vec![(4, 40)])), Ok(()));
        v.retain_times(|t| t % 2 == 0);
        assert_eq!((v.len(), v.time(0), v.time(1)), (2, Some(2), Some(4)));
        for t in [
            BlockType::Float,
            BlockType::Integer,
            BlockType::Boolean,
            BlockType::String,
            BlockType::Unsigned,
        ] {
            assert_eq!(BlockType::from_byte(t.byte()), Some(t));
            assert_eq!(Values::empty(t).block_type(), t);
        }
        assert_eq!(BlockType::from_byte(5), None);
    }
}
