//! Retention policies and continuous queries of a backed-up database recreated on the target
//! through InfluxQL, idempotently: an identical definition is left alone, a missing one is
//! created, a different one is reported as a conflict and never overwritten.

use snapshotd_store::meta::{Data, DatabaseInfo, RetentionPolicyInfo};

use crate::cq::{canonical, rewrite_cq};
use crate::duration::{influxql_duration, parse_go_duration};
use crate::error::{InfluxApiError, Result};
use crate::http::{InfluxHttp, Series, quote_ident};

/// What [`restore_schema`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SchemaReport {
    /// The target database did not exist and was created.
    pub created_db: bool,
    /// Retention policies created.
    pub rps_created: Vec<String>,
    /// Retention policies already present with the same definition.
    pub rps_same: Vec<String>,
    /// Continuous queries created.
    pub cqs_created: Vec<String>,
    /// Continuous queries already present with the same text.
    pub cqs_same: Vec<String>,
    /// Definitions that differ on the target (left as they are), one sentence each.
    pub conflicts: Vec<String>,
}

/// A retention policy as the target reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TargetRp {
    name: String,
    duration: i64,
    shard_duration: i64,
    replica_n: u32,
    default: bool,
}

/// Makes database `new_db` on the target hold the RPs and CQs of `db` in `meta`. When the
/// database is created here, the backup's default RP becomes its default; an existing
/// database keeps its own default RP.
pub async fn restore_schema(
    http: &InfluxHttp,
    meta: &Data,
    db: &str,
    new_db: &str,
) -> Result<SchemaReport> {
    let src = meta
        .database(db)
        .ok_or_else(|| InfluxApiError::DatabaseNotInBackup { db: db.to_string() })?;
    let mut rep = SchemaReport::default();
    let dbs = http
        .query(None, "SHOW DATABASES", "list the target's databases")
        .await?;
    let exists = first_column(&dbs).iter().any(|n| n == new_db);
    if !exists {
        let q = format!("CREATE DATABASE {}", quote_ident(new_db));
        http.query(None, &q, &format!("create database {new_db}"))
            .await?;
        rep.created_db = true;
    }
    let target = target_rps(http, new_db).await?;
    for rp in &src.retention_policies {
        let make_default = rep.created_db && rp.name == src.default_retention_policy;
        sync_rp(http, new_db, rp, make_default, &target, &mut rep).await?;
    }
    sync_cqs(http, src, new_db, &mut rep).await?;
    Ok(rep)
}

async fn sync_rp(
    http: &InfluxHttp,
    db: &str,
    rp: &RetentionPolicyInfo,
    make_default: bool,
    target: &[TargetRp],
    rep: &mut SchemaReport,
) -> Result<()> {
    let spec = format!(
        "DURATION {} REPLICATION {} SHARD DURATION {}{}",
        influxql_duration(rp.duration),
        rp.replica_n.max(1),
        influxql_duration(rp.shard_group_duration),
        if make_default { " DEFAULT" } else { "" }
    );
    let on = format!("{} ON {}", quote_ident(&rp.name), quote_ident(db));
    let what = format!("retention policy {} on {db}", rp.name);
    match target.iter().find(|t| t.name == rp.name) {
        None => {
            let q = format!("CREATE RETENTION POLICY {on} {spec}");
            http.query(None, &q, &format!("create {what}")).await?;
            rep.rps_created.push(rp.name.clone());
        }
        Some(t) if same_rp(t, rp) && (!make_default || t.default) => {
            rep.rps_same.push(rp.name.clone())
        }
        // A database created by this restore starts with influx's own autogen: make it match.
        Some(_) if rep.created_db => {
            let q = format!("ALTER RETENTION POLICY {on} {spec}");
            http.query(None, &q, &format!("alter {what}")).await?;
            rep.rps_created.push(rp.name.clone());
        }
        Some(t) => rep.conflicts.push(format!(
            "{what}: the target has duration {}, shard duration {}, replication {}; the \
             backup has {}, {}, {} (left unchanged; ALTER it yourself if the backup's is wanted)",
            influxql_duration(t.duration),
            influxql_duration(t.shard_duration),
            t.replica_n,
            influxql_duration(rp.duration),
            influxql_duration(rp.shard_group_duration),
            rp.replica_n
        )),
    }
    Ok(())
}

fn same_rp(t: &TargetRp, rp: &RetentionPolicyInfo) -> bool {
    t.duration == rp.duration
        && t.shard_duration == rp.shard_group_duration
        && t.replica_n == rp.replica_n.max(1)
}

async fn target_rps(http: &InfluxHttp, db: &str) -> Result<Vec<TargetRp>> {
    let q = format!("SHOW RETENTION POLICIES ON {}", quote_ident(db));
    let what = format!("list the retention policies of {db}");
    let series = http.query(None, &q, &what).await?;
    let mut out = Vec::new();
    for s in &series {
        let col = |n: &str| s.column(n);
        let (Some(n), Some(d), Some(sd), Some(r), Some(def)) = (
            col("name"),
            col("duration"),
            col("shardGroupDuration"),
            col("replicaN"),
            col("default"),
        ) else {
            return Err(InfluxApiError::Server {
                what,
                status: 200,
                message: "unexpected columns".into(),
            });
        };
        for row in &s.values {
            let get = |i: usize| row.get(i).cloned().unwrap_or_default();
            let dur = |i: usize| get(i).as_str().and_then(parse_go_duration).unwrap_or(-1);
            out.push(TargetRp {
                name: get(n).as_str().unwrap_or_default().to_string(),
                duration: dur(d),
                shard_duration: dur(sd),
                replica_n: get(r).as_u64().unwrap_or(0) as u32,
                default: get(def).as_bool().unwrap_or(false),
            });
        }
    }
    Ok(out)
}

async fn sync_cqs(
    http: &InfluxHttp,
    src: &DatabaseInfo,
    new_db: &str,
    rep: &mut SchemaReport,
) -> Result<()> {
    if src.continuous_queries.is_empty() {
        return Ok(());
    }
    let series = http
        .query(
            None,
            "SHOW CONTINUOUS QUERIES",
            "list the target's continuous queries",
        )
        .await?;
    let existing: Vec<(String, String)> = series
        .iter()
        .filter(|s| s.name == new_db)
        .flat_map(|s| {
            s.values.iter().map(|r| {
                let g = |i: usize| {
                    r.get(i)
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_string()
                };
                (g(0), g(1))
            })
        })
        .collect();
    for cq in &src.continuous_queries {
        let text = rewrite_cq(&cq.query, &src.name, new_db);
        match existing.iter().find(|(n, _)| *n == cq.name) {
            None => {
                let what = format!("create continuous query {} on {new_db}", cq.name);
                http.query(Some(new_db), &text, &what).await?;
                rep.cqs_created.push(cq.name.clone());
            }
            Some((_, t)) if canonical(t) == canonical(&text) => rep.cqs_same.push(cq.name.clone()),
            Some((_, t)) => rep.conflicts.push(format!(
                "continuous query {} on {new_db}: the target's is `{t}`, the backup's is `{text}` \
                 (left unchanged; DROP it first if the backup's is wanted)",
                cq.name
            )),
        }
    }
    Ok(())
}

/// The first column of every row (e.g. names from `SHOW DATABASES`).
pub(crate) fn first_column(series: &[Series]) -> Vec<String> {
    series
        .iter()
        .flat_map(|s| s.values.iter())
        .filter_map(|r| r.first().and_then(|v| v.as_str()).map(str::to_string))
        .collect()
}
