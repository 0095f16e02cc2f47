//! `AdminStore` for the built-in store: databases, retention policies and line-protocol
//! writes routed to shard groups.

use std::collections::BTreeMap;
use std::fs;
use std::time::Duration;

use super::write::Point;
use super::{BuiltinStore, ShardEntry, lock, not_found, ns, shard, shard_log, write};
use crate::api::AdminStore;
use crate::error::{
    Conflict, DurationField, DurationProblem, InvalidInput, LineProblem, NameKind, Result,
    StoreError,
};
use crate::meta::{Data, DatabaseInfo, RetentionPolicyInfo};
use crate::types::{
    DatabaseSpec, Precision, RetentionPolicySpec, Scalar, ShardInfo, ShardPath, WriteStats,
};

/// The refusal of duration `field` of retention policy `spec`.
fn bad_duration(
    spec: &RetentionPolicySpec,
    field: DurationField,
    problem: DurationProblem,
) -> StoreError {
    InvalidInput::Duration {
        retention_policy: spec.name.clone(),
        field,
        problem,
    }
    .into()
}

fn rp_info(spec: &RetentionPolicySpec) -> Result<RetentionPolicyInfo> {
    shard::check_name(NameKind::RetentionPolicy, &spec.name)?;
    let too_large = |field| move |_| bad_duration(spec, field, DurationProblem::TooLarge);
    let duration = ns(spec.duration).map_err(too_large(DurationField::Retention))?;
    let mut sgd = ns(spec.shard_group_duration).map_err(too_large(DurationField::ShardGroup))?;
    let short = DurationProblem::ShorterThanHour;
    if duration != 0 && duration < shard::HOUR {
        return Err(bad_duration(spec, DurationField::Retention, short));
    }
    if sgd == 0 {
        sgd = shard::default_group_duration(duration);
    } else if sgd < shard::HOUR {
        return Err(bad_duration(spec, DurationField::ShardGroup, short));
    }
    Ok(RetentionPolicyInfo {
        name: spec.name.clone(),
        duration,
        shard_group_duration: sgd,
        replica_n: spec.replication.max(1),
        shard_groups: vec![],
        subscriptions: vec![],
    })
}

impl BuiltinStore {
    /// Routes a parsed batch to shards (creating shard groups as needed, saved before any
    /// append) and encodes one WAL entry per shard. The metastore is cloned only when a
    /// group has to be created.
    fn route_batch(
        &self,
        database: &str,
        retention_policy: Option<&str>,
        points: &[write::Parsed],
    ) -> Result<(String, Vec<ShardEntry>)> {
        let mut data = lock(&self.meta);
        let db = data
            .database(database)
            .ok_or_else(|| not_found("database", database))?;
        let rp_name = match retention_policy.filter(|r| !r.is_empty()) {
            Some(r) => r.to_string(),
            None if db.default_retention_policy.is_empty() => {
                return Err(InvalidInput::NoDefaultRetentionPolicy {
                    database: database.to_string(),
                }
                .into());
            }
            None => db.default_retention_policy.clone(),
        };
        let rp = db
            .retention_policy(&rp_name)
            .ok_or_else(|| not_found("retention policy", format!("{database}.{rp_name}")))?;
        let now = write::now_ns();
        let mut needs_group = false;
        for p in points {
            if rp.duration > 0 && p.point.time_ns < now.saturating_sub(rp.duration) {
                return Err(InvalidInput::Line {
                    database: database.to_string(),
                    line: p.line_no,
                    problem: LineProblem::BeyondRetention {
                        retention_policy: rp_name,
                    },
                }
                .into());
            }
            needs_group |= shard::find(rp, p.point.time_ns).is_none();
        }
        let mut work = needs_group.then(|| data.clone());
        let target: &mut Data = match work.as_mut() {
            Some(w) => w,
            None => &mut data,
        };
        let (mut max_sg, mut max_shard) = (target.max_shard_group_id, target.max_shard_id);
        let rp = target
            .database_mut(database)
            .and_then(|d| d.retention_policy_mut(&rp_name))
            .ok_or_else(|| not_found("retention policy", format!("{database}.{rp_name}")))?;
        let mut by_shard: BTreeMap<u64, Vec<&Point>> = BTreeMap::new();
        let mut created = Vec::new();
        for p in points {
            let (id, new) = shard::route(rp, &mut max_sg, &mut max_shard, p.point.time_ns);
            if new {
                created.push(id);
            }
            by_shard.entry(id).or_default().push(&p.point);
        }
        if let Some(mut work) = work {
            work.max_shard_group_id = max_sg;
            work.max_shard_id = max_shard;
            work.index += 1;
            self.create_shard_dirs(&work, &created)?;
            self.save(&work)?;
            *data = work;
        }
        let entries = by_shard
            .into_iter()
            .map(|(id, pts)| Ok((id, write::encode_points(&pts)?)))
            .collect::<Result<Vec<ShardEntry>>>()?;
        Ok((rp_name, entries))
    }
}

impl AdminStore for BuiltinStore {
    fn scan_values(
        &self,
        database: &str,
        retention_policy: Option<&str>,
        measurement: &str,
        visit: &mut dyn FnMut(&str, i64, Scalar<'_>),
    ) -> Result<()> {
        self.scan(database, retention_policy, measurement, visit)
    }

    fn create_database(&self, spec: &DatabaseSpec) -> Result<()> {
        shard::check_name(NameKind::Database, &spec.name)?;
        let rp = match &spec.retention_policy {
            Some(rp) => rp_info(rp)?,
            None => RetentionPolicyInfo {
                name: "autogen".into(),
                duration: 0,
                shard_group_duration: 7 * shard::DAY,
                replica_n: 1,
                shard_groups: vec![],
                subscriptions: vec![],
            },
        };
        let mut data = lock(&self.meta);
        if data.database(&spec.name).is_some() {
            return Err(Conflict::Database {
                database: spec.name.clone(),
            }
            .into());
        }
        let mut work = data.clone();
        work.databases.push(DatabaseInfo {
            name: spec.name.clone(),
            default_retention_policy: rp.name.clone(),
            retention_policies: vec![rp],
            continuous_queries: vec![],
        });
        work.index += 1;
        self.save(&work)?;
        *data = work;
        Ok(())
    }

    fn create_retention_policy(&self, database: &str, spec: &RetentionPolicySpec) -> Result<()> {
        let rp = rp_info(spec)?;
        let mut data = lock(&self.meta);
        let mut work = data.clone();
        let db = work
            .database_mut(database)
            .ok_or_else(|| not_found("database", database))?;
        if db.retention_policy(&rp.name).is_some() {
            return Err(Conflict::RetentionPolicy {
                database: database.to_string(),
                retention_policy: rp.name,
            }
            .into());
        }
        if spec.make_default || db.default_retention_policy.is_empty() {
            db.default_retention_policy = rp.name.clone();
        }
        db.retention_policies.push(rp);
        work.index += 1;
        self.save(&work)?;
        *data = work;
        Ok(())
    }

    fn drop_database(&self, name: &str) -> Result<()> {
        let mut data = lock(&self.meta);
        let mut work = data.clone();
        let pos = work
            .databases
            .iter()
            .position(|d| d.name == name)
            .ok_or_else(|| not_found("database", name))?;
        let db = work.databases.remove(pos);
        for u in &mut work.users {
            u.privileges.retain(|p| p.database != name);
        }
        work.index += 1;
        self.save(&work)?;
        *data = work;
        drop(data);
        {
            let mut slots = lock(&self.slots);
            for rp in &db.retention_policies {
                for g in &rp.shard_groups {
                    for s in &g.shards {
                        if let Some(slot) = slots.remove(&s.id) {
                            *lock(&slot) = None;
                        }
                    }
                }
            }
        }
        let dir = self.root.join("data").join(name);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(format!("remove {}", dir.display()), e)),
        }
    }

    fn databases(&self) -> Result<Vec<String>> {
        Ok(lock(&self.meta)
            .databases
            .iter()
            .map(|d| d.name.clone())
            .collect())
    }

    fn retention_policies(&self, database: &str) -> Result<Vec<(RetentionPolicySpec, bool)>> {
        let data = lock(&self.meta);
        let db = data
            .database(database)
            .ok_or_else(|| not_found("database", database))?;
        Ok(db
            .retention_policies
            .iter()
            .map(|rp| {
                let is_default = rp.name == db.default_retention_policy;
                let spec = RetentionPolicySpec {
                    name: rp.name.clone(),
                    duration: Duration::from_nanos(rp.duration.max(0) as u64),
                    shard_group_duration: Duration::from_nanos(
                        rp.shard_group_duration.max(0) as u64
                    ),
                    replication: rp.replica_n,
                    make_default: is_default,
                };
                (spec, is_default)
            })
            .collect())
    }

    fn shards(&self) -> Result<Vec<ShardInfo>> {
        let data = lock(&self.meta);
        let mut out = Vec::new();
        for db in &data.databases {
            for rp in &db.retention_policies {
                for g in rp.shard_groups.iter().filter(|g| !g.is_deleted()) {
                    for s in &g.shards {
                        out.push(ShardInfo {
                            path: ShardPath {
                                database: db.name.clone(),
                                retention_policy: rp.name.clone(),
                                shard_id: s.id,
                            },
                            shard_group_id: g.id,
                            start_ns: g.start_time,
                            end_ns: g.end_time,
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    fn write_lines(
        &self,
        database: &str,
        retention_policy: Option<&str>,
        precision: Precision,
        body: &[u8],
    ) -> Result<WriteStats> {
        let points = write::parse_batch(database, body, precision)?;
        let (rp_name, by_shard) = self.route_batch(database, retention_policy, &points)?;
        let shards = by_shard.len() as u64;
        for (id, entry) in by_shard {
            let dir = self.shard_dir(database, &rp_name, id);
            let slot = self.slot(id);
            let mut writer = lock(&slot);
            if writer.is_none() {
                *writer = Some(shard_log::ShardLog::open(
                    &dir,
                    self.shared.policy.segment_bytes,
                )?);
            }
            if let Some(w) = writer.as_mut() {
                w.append(entry)?;
                if self.shared.over(w.pending(), w.bytes_since)
                    && let Some(c) = &self.compactor
                {
                    c.request(id);
                }
            }
        }
        Ok(WriteStats {
            points: points.len() as u64,
            shards,
        })
    }
}
