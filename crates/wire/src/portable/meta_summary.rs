//! A decode-only view of `meta.Data`: databases, retention policies, shard groups, shards.

use prost::Message;

use crate::{Limits, WireError};

/// What a backup tool needs from a metastore blob (its databases, retention policies and shards); other fields are skipped.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct MetaSummary {
    /// `Index` (change counter).
    #[prost(uint64, tag = "2")]
    pub index: u64,
    /// `ClusterID`.
    #[prost(uint64, tag = "3")]
    pub cluster_id: u64,
    /// `Databases` in metastore order.
    #[prost(message, repeated, tag = "5")]
    pub databases: Vec<DatabaseSummary>,
    /// Names of the `Users` (hashes are not kept).
    #[prost(message, repeated, tag = "6")]
    pub users: Vec<UserSummary>,
    /// `MaxShardGroupID`.
    #[prost(uint64, tag = "8")]
    pub max_shard_group_id: u64,
    /// `MaxShardID`.
    #[prost(uint64, tag = "9")]
    pub max_shard_id: u64,
}

/// `DatabaseInfo` without continuous queries.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct DatabaseSummary {
    /// `Name`.
    #[prost(string, tag = "1")]
    pub name: String,
    /// `DefaultRetentionPolicy`.
    #[prost(string, tag = "2")]
    pub default_retention_policy: String,
    /// `RetentionPolicies` in order.
    #[prost(message, repeated, tag = "3")]
    pub retention_policies: Vec<RetentionPolicySummary>,
}

/// `RetentionPolicyInfo` without subscriptions.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct RetentionPolicySummary {
    /// `Name`.
    #[prost(string, tag = "1")]
    pub name: String,
    /// `Duration` in ns (0 = infinite).
    #[prost(int64, tag = "2")]
    pub duration: i64,
    /// `ShardGroupDuration` in ns.
    #[prost(int64, tag = "3")]
    pub shard_group_duration: i64,
    /// `ReplicaN`.
    #[prost(uint32, tag = "4")]
    pub replica_n: u32,
    /// `ShardGroups` in order (deleted ones included).
    #[prost(message, repeated, tag = "5")]
    pub shard_groups: Vec<ShardGroupSummary>,
}

/// `ShardGroupInfo`.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct ShardGroupSummary {
    /// `ID`.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// `StartTime`, Unix ns.
    #[prost(int64, tag = "2")]
    pub start_time: i64,
    /// `EndTime`, Unix ns.
    #[prost(int64, tag = "3")]
    pub end_time: i64,
    /// `DeletedAt`, Unix ns (0 = not deleted).
    #[prost(int64, tag = "4")]
    pub deleted_at: i64,
    /// `Shards`.
    #[prost(message, repeated, tag = "5")]
    pub shards: Vec<ShardSummary>,
    /// `TruncatedAt`, Unix ns (0 = not truncated).
    #[prost(int64, tag = "6")]
    pub truncated_at: i64,
}

/// `ShardInfo` (owners skipped).
#[derive(Clone, PartialEq, Eq, Message)]
pub struct ShardSummary {
    /// `ID`.
    #[prost(uint64, tag = "1")]
    pub id: u64,
}

/// `UserInfo` name and admin flag (the bcrypt hash is skipped).
#[derive(Clone, PartialEq, Eq, Message)]
pub struct UserSummary {
    /// `Name`.
    #[prost(string, tag = "1")]
    pub name: String,
    /// `Admin`.
    #[prost(bool, tag = "3")]
    pub admin: bool,
}

/// One shard located in the metastore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardLocation<'a> {
    /// Database name.
    pub database: &'a str,
    /// Retention policy name.
    pub retention_policy: &'a str,
    /// The shard group holding the shard.
    pub group: &'a ShardGroupSummary,
    /// Shard id.
    pub shard_id: u64,
}

impl MetaSummary {
    /// Decodes a `meta.Data` blob no longer than [`Limits::max_meta_blob`].
    pub fn decode_blob(blob: &[u8], limits: &Limits) -> Result<MetaSummary, WireError> {
        let len = blob.len() as u64;
        if len > limits.max_meta_blob {
            return Err(WireError::MetaBlobTooLarge {
                len,
                limit: limits.max_meta_blob,
            });
        }
        MetaSummary::decode(blob).map_err(|source| WireError::BadProtobuf {
            what: "meta.Data",
            source,
        })
    }

    /// The database named `name`.
    pub fn database(&self, name: &str) -> Option<&DatabaseSummary> {
        self.databases.iter().find(|d| d.name == name)
    }

    /// Every shard in metastore order (database → RP → group → shard), as influx lists them.
    pub fn shards(&self) -> impl Iterator<Item = ShardLocation<'_>> {
        self.databases.iter().flat_map(|db| {
            db.retention_policies.iter().flat_map(move |rp| {
                rp.shard_groups.iter().flat_map(move |g| {
                    g.shards.iter().map(move |s| ShardLocation {
                        database: &db.name,
                        retention_policy: &rp.name,
                        group: g,
                        shard_id: s.id,
                    })
                })
            })
        })
    }

    /// Where shard `id` lives, if the metastore has it.
    pub fn find_shard(&self, id: u64) -> Option<ShardLocation<'_>> {
        self.shards().find(|s| s.shard_id == id)
    }
}
