//! Users and grants of a backed-up database applied online: the HTTP API cannot set a
//! password hash, so grants go to users that already exist on the target and the others are
//! listed for the operator (or use the offline restore, which writes the hashes).

use snapshotd_store::meta::Data;

use crate::error::Result;
use crate::http::{InfluxHttp, quote_ident};
use crate::schema::first_column;

/// What [`restore_grants`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GrantsReport {
    /// `(user, privilege)` grants applied (or already in place).
    pub applied: Vec<(String, String)>,
    /// Users with a privilege on the database in the backup that do not exist on the target.
    pub missing_users: Vec<String>,
    /// Admin users of the backup: admin rights are not granted by a database restore.
    pub admins_not_granted: Vec<String>,
}

/// The InfluxQL name of a stored privilege (`influxql.Privilege`), `None` for "no privileges".
pub fn privilege_name(p: i32) -> Option<&'static str> {
    match p {
        1 => Some("READ"),
        2 => Some("WRITE"),
        3 => Some("ALL"),
        _ => None,
    }
}

/// Grants each backup user's privilege on `db` to the same user on `new_db`, for users that
/// exist on the target.
pub async fn restore_grants(
    http: &InfluxHttp,
    meta: &Data,
    db: &str,
    new_db: &str,
) -> Result<GrantsReport> {
    let mut rep = GrantsReport::default();
    let users = http
        .query(None, "SHOW USERS", "list the target's users")
        .await?;
    let existing = first_column(&users);
    for u in &meta.users {
        if u.admin {
            rep.admins_not_granted.push(u.name.clone());
        }
        for p in u.privileges.iter().filter(|p| p.database == db) {
            let Some(priv_name) = privilege_name(p.privilege) else {
                continue;
            };
            if !existing.contains(&u.name) {
                if !rep.missing_users.contains(&u.name) {
                    rep.missing_users.push(u.name.clone());
                }
                continue;
            }
            let q = format!(
                "GRANT {priv_name} ON {} TO {}",
                quote_ident(new_db),
                quote_ident(&u.name)
            );
            let what = format!("grant {priv_name} on {new_db} to user {}", u.name);
            http.query(None, &q, &what).await?;
            rep.applied.push((u.name.clone(), priv_name.to_string()));
        }
    }
    Ok(rep)
}
