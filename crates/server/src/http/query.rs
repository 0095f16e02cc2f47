//! `/query`: the operator statements and aggregate `SELECT`s of [`super::influxql`],
//! answered in influx's JSON shape.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde::Serialize;
use serde_json::{Value, json};
use tracing::debug;

use snapshotd_store::{AdminStore, Conflict, DatabaseSpec, RetentionPolicySpec, StoreError};

use super::influxql::{self, RpClause, Statement, go_duration};
use super::{HttpState, error_json, json as json_response, param, params};

/// Handles `/query` (GET or POST; `q` as query parameter or form field).
pub(super) async fn query(
    State(state): State<HttpState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let ps = params(raw.as_deref(), is_form.then_some(&body[..]));
    let Some(q) = param(&ps, "q").map(str::to_owned) else {
        return error_json(StatusCode::BAD_REQUEST, "missing required parameter \"q\"");
    };
    let default_db = param(&ps, "db")
        .filter(|d| !d.is_empty())
        .map(str::to_owned);
    let stmts = match influxql::parse(&q) {
        Ok(s) => s,
        Err(e) => {
            return error_json(
                StatusCode::BAD_REQUEST,
                &format!("error parsing query: {e}"),
            );
        }
    };
    let store = state.store.clone();
    let run = tokio::task::spawn_blocking(move || {
        let mut results = Vec::with_capacity(stmts.len());
        for (i, st) in stmts.iter().enumerate() {
            debug!(statement = ?st, "query");
            let r = match execute(store.as_ref(), st, default_db.as_deref()) {
                Ok(series) => StatementResult {
                    statement_id: i,
                    series: (!series.is_empty()).then_some(series),
                    error: None,
                },
                Err(msg) => StatementResult {
                    statement_id: i,
                    series: None,
                    error: Some(msg),
                },
            };
            let failed = r.error.is_some();
            results.push(r);
            if failed {
                break; // influx stops at the first failing statement
            }
        }
        results
    })
    .await;
    match run {
        Ok(results) => {
            metrics::counter!(crate::metrics::HTTP_REQUESTS, "status" => "200").increment(1);
            json_response(StatusCode::OK, &Results { results })
        }
        Err(e) => error_json(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("query task failed: {e}"),
        ),
    }
}

/// The `/query` reply.
#[derive(Debug, Serialize)]
struct Results {
    results: Vec<StatementResult>,
}

/// One statement's result, keys in influx's order.
#[derive(Debug, Serialize)]
struct StatementResult {
    statement_id: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    series: Option<Vec<Series>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// A result series, keys in influx's order; `values` omitted when empty.
#[derive(Debug, Serialize)]
struct Series {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    columns: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    values: Vec<Value>,
}

fn rp_spec(c: &RpClause, make_default: bool) -> RetentionPolicySpec {
    RetentionPolicySpec {
        name: c.name.clone().unwrap_or_else(|| "autogen".to_string()),
        duration: c.duration.unwrap_or(Duration::ZERO),
        shard_group_duration: c.shard_duration.unwrap_or(Duration::ZERO),
        replication: c.replication.unwrap_or(1),
        make_default,
    }
}

/// Runs one statement; `Ok` holds the result's series (possibly none).
fn execute(
    store: &dyn AdminStore,
    st: &Statement,
    default_db: Option<&str>,
) -> Result<Vec<Series>, String> {
    match st {
        Statement::CreateDatabase { name, with } => {
            let spec = DatabaseSpec {
                name: name.clone(),
                retention_policy: with.as_ref().map(|c| rp_spec(c, true)),
            };
            match store.create_database(&spec) {
                Ok(()) => Ok(vec![]),
                // influx: creating an existing database without options is a no-op.
                Err(StoreError::Conflict(Conflict::Database { .. })) if with.is_none() => {
                    Ok(vec![])
                }
                Err(e) => Err(e.to_string()),
            }
        }
        Statement::CreateRetentionPolicy {
            name,
            database,
            duration,
            replication,
            shard_duration,
            default,
        } => {
            let spec = RetentionPolicySpec {
                name: name.clone(),
                duration: *duration,
                shard_group_duration: *shard_duration,
                replication: *replication,
                make_default: *default,
            };
            store
                .create_retention_policy(database, &spec)
                .map(|()| vec![])
                .map_err(|e| e.to_string())
        }
        Statement::DropDatabase { name } => match store.drop_database(name) {
            Ok(()) | Err(StoreError::NotFound { .. }) => Ok(vec![]),
            Err(e) => Err(e.to_string()),
        },
        Statement::ShowDatabases => {
            let dbs = store.databases().map_err(|e| e.to_string())?;
            Ok(vec![Series {
                name: Some("databases".into()),
                columns: cols(&["name"]),
                values: dbs.into_iter().map(|d| json!([d])).collect(),
            }])
        }
        Statement::ShowRetentionPolicies { database } => {
            let Some(db) = database.as_deref().or(default_db) else {
                return Err("database name required".to_string());
            };
            let rps = store.retention_policies(db).map_err(|e| match e {
                StoreError::NotFound { .. } => format!("database not found: {db}"),
                e => e.to_string(),
            })?;
            let values: Vec<Value> = rps
                .into_iter()
                .map(|(rp, is_default)| {
                    json!([
                        rp.name,
                        go_duration(rp.duration),
                        go_duration(rp.shard_group_duration),
                        rp.replication,
                        is_default
                    ])
                })
                .collect();
            Ok(vec![Series {
                name: None,
                columns: cols(&[
                    "name",
                    "duration",
                    "shardGroupDuration",
                    "replicaN",
                    "default",
                ]),
                values,
            }])
        }
        Statement::ShowShards => show_shards(store),
        Statement::Select { calls, source } => {
            let r = super::select::run(store, calls, source, default_db)?;
            Ok(r.map(|t| Series {
                name: Some(t.name),
                columns: t.columns,
                values: t.rows,
            })
            .into_iter()
            .collect())
        }
    }
}

fn cols(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_string()).collect()
}

fn rfc3339(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn show_shards(store: &dyn AdminStore) -> Result<Vec<Series>, String> {
    let shards = store.shards().map_err(|e| e.to_string())?;
    let dbs = store.databases().map_err(|e| e.to_string())?;
    let mut durations: HashMap<(String, String), i64> = HashMap::new();
    for db in &dbs {
        if let Ok(rps) = store.retention_policies(db) {
            for (rp, _) in rps {
                let ns = i64::try_from(rp.duration.as_nanos()).unwrap_or(i64::MAX);
                durations.insert((db.clone(), rp.name), ns);
            }
        }
    }
    let mut by_db: Vec<(String, Vec<Value>)> = dbs.iter().map(|d| (d.clone(), vec![])).collect();
    for s in shards {
        let p = &s.path;
        let dur = durations
            .get(&(p.database.clone(), p.retention_policy.clone()))
            .copied()
            .unwrap_or(0);
        let expiry = if dur == 0 {
            s.end_ns
        } else {
            s.end_ns.saturating_add(dur)
        };
        let row = json!([
            p.shard_id,
            p.database,
            p.retention_policy,
            s.shard_group_id,
            rfc3339(s.start_ns),
            rfc3339(s.end_ns),
            rfc3339(expiry),
            ""
        ]);
        match by_db.iter_mut().find(|(d, _)| *d == p.database) {
            Some((_, rows)) => rows.push(row),
            None => by_db.push((p.database.clone(), vec![row])),
        }
    }
    let columns = cols(&[
        "id",
        "database",
        "retention_policy",
        "shard_group",
        "start_time",
        "end_time",
        "expiry_time",
        "owners",
    ]);
    Ok(by_db
        .into_iter()
        .map(|(db, rows)| Series {
            name: Some(db),
            columns: columns.clone(),
            values: rows,
        })
        .collect())
}
