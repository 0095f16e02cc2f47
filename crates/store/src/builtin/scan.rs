//! Reading a measurement's values for operator queries, one shard in memory at a time.

use super::BuiltinStore;
use super::write::{Point, Value};
use crate::error::Result;
use crate::types::Scalar;

impl BuiltinStore {
    /// Visits every value of `measurement` in a retention policy as `(field, ns, value)`.
    pub(crate) fn scan(
        &self,
        database: &str,
        retention_policy: Option<&str>,
        measurement: &str,
        visit: &mut dyn FnMut(&str, i64, Scalar<'_>),
    ) -> Result<()> {
        let (rp, ids) = self.rp_shard_ids(database, retention_policy)?;
        for id in ids {
            let dir = self.shard_dir(database, &rp, id);
            if !dir.is_dir() {
                continue;
            }
            for p in self.shard_points(&dir, id)? {
                visit_point(&p, measurement, visit);
            }
        }
        Ok(())
    }
}

fn visit_point(p: &Point, measurement: &str, visit: &mut dyn FnMut(&str, i64, Scalar<'_>)) {
    if p.measurement != measurement {
        return;
    }
    for (name, v) in &p.fields {
        let s = match v {
            Value::Float(f) => Scalar::Float(*f),
            Value::Integer(i) => Scalar::Integer(*i),
            Value::Unsigned(u) => Scalar::Unsigned(*u),
            Value::Boolean(b) => Scalar::Boolean(*b),
            Value::String(s) => Scalar::Str(s),
        };
        visit(name, p.time_ns, s);
    }
}
