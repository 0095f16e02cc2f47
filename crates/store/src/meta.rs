//! influx `meta.Data` (package `meta`, proto2) as prost messages, field numbers those of
//! influx 1.6's `meta/internal/meta.proto`, plus the portable `.meta` wrapper `PortableData`.
//!
//! Required fields are plain (always emitted, as gogo-protobuf does); optional ones are
//! `Option`. Unknown fields (Enterprise extensions) are skipped on decode.

use prost::Message;

use crate::error::{InvalidInput, MetaFormat, Result, StoreError};

/// Largest meta blob accepted for decoding (influx metas are KBs to a few MBs).
pub const MAX_META_BYTES: usize = 256 * 1024 * 1024;

/// The whole metastore.
#[derive(Clone, PartialEq, Message)]
pub struct Data {
    /// Raft term (0 on OSS).
    #[prost(uint64, required, tag = "1")]
    pub term: u64,
    /// Change counter.
    #[prost(uint64, required, tag = "2")]
    pub index: u64,
    /// Random cluster id.
    #[prost(uint64, required, tag = "3")]
    pub cluster_id: u64,
    /// Nodes (not written by OSS).
    #[prost(message, repeated, tag = "4")]
    pub nodes: Vec<NodeInfo>,
    /// Databases in metastore order.
    #[prost(message, repeated, tag = "5")]
    pub databases: Vec<DatabaseInfo>,
    /// Users with bcrypt hashes.
    #[prost(message, repeated, tag = "6")]
    pub users: Vec<UserInfo>,
    /// Highest node id (0 on OSS).
    #[prost(uint64, required, tag = "7")]
    pub max_node_id: u64,
    /// Highest shard group id handed out.
    #[prost(uint64, required, tag = "8")]
    pub max_shard_group_id: u64,
    /// Highest shard id handed out.
    #[prost(uint64, required, tag = "9")]
    pub max_shard_id: u64,
    /// Data nodes (not written by OSS).
    #[prost(message, repeated, tag = "10")]
    pub data_nodes: Vec<NodeInfo>,
    /// Meta nodes (not written by OSS).
    #[prost(message, repeated, tag = "11")]
    pub meta_nodes: Vec<NodeInfo>,
}

/// A cluster node.
#[derive(Clone, PartialEq, Message)]
pub struct NodeInfo {
    /// Node id.
    #[prost(uint64, required, tag = "1")]
    pub id: u64,
    /// HTTP host.
    #[prost(string, required, tag = "2")]
    pub host: String,
    /// TCP host.
    #[prost(string, optional, tag = "3")]
    pub tcp_host: Option<String>,
}

/// A database.
#[derive(Clone, PartialEq, Message)]
pub struct DatabaseInfo {
    /// Name.
    #[prost(string, required, tag = "1")]
    pub name: String,
    /// Name of the default retention policy ("" = none).
    #[prost(string, required, tag = "2")]
    pub default_retention_policy: String,
    /// Retention policies in order.
    #[prost(message, repeated, tag = "3")]
    pub retention_policies: Vec<RetentionPolicyInfo>,
    /// Continuous queries.
    #[prost(message, repeated, tag = "4")]
    pub continuous_queries: Vec<ContinuousQueryInfo>,
}

/// A retention policy with its shard groups.
#[derive(Clone, PartialEq, Message)]
pub struct RetentionPolicyInfo {
    /// Name.
    #[prost(string, required, tag = "1")]
    pub name: String,
    /// Retention in ns (0 = infinite).
    #[prost(int64, required, tag = "2")]
    pub duration: i64,
    /// Shard group duration in ns.
    #[prost(int64, required, tag = "3")]
    pub shard_group_duration: i64,
    /// Replication factor.
    #[prost(uint32, required, tag = "4")]
    pub replica_n: u32,
    /// Shard groups in order.
    #[prost(message, repeated, tag = "5")]
    pub shard_groups: Vec<ShardGroupInfo>,
    /// Subscriptions.
    #[prost(message, repeated, tag = "6")]
    pub subscriptions: Vec<SubscriptionInfo>,
}

/// A shard group: a time window of a retention policy.
#[derive(Clone, PartialEq, Message)]
pub struct ShardGroupInfo {
    /// Group id.
    #[prost(uint64, required, tag = "1")]
    pub id: u64,
    /// Window start, Unix ns.
    #[prost(int64, required, tag = "2")]
    pub start_time: i64,
    /// Window end, Unix ns (exclusive).
    #[prost(int64, required, tag = "3")]
    pub end_time: i64,
    /// Deletion time (0 = live).
    #[prost(int64, required, tag = "4")]
    pub deleted_at: i64,
    /// Shards of the group.
    #[prost(message, repeated, tag = "5")]
    pub shards: Vec<ShardInfo>,
    /// Truncation time, written only when set.
    #[prost(int64, optional, tag = "6")]
    pub truncated_at: Option<i64>,
}

impl ShardGroupInfo {
    /// Whether the group is deleted (influx skips such groups when listing).
    pub fn is_deleted(&self) -> bool {
        self.deleted_at != 0
    }
}

/// A shard.
#[derive(Clone, PartialEq, Message)]
pub struct ShardInfo {
    /// Shard id.
    #[prost(uint64, required, tag = "1")]
    pub id: u64,
    /// Deprecated owner ids (unpacked).
    #[prost(uint64, repeated, packed = "false", tag = "2")]
    pub owner_ids: Vec<u64>,
    /// Owners (empty on OSS).
    #[prost(message, repeated, tag = "3")]
    pub owners: Vec<ShardOwner>,
}

/// A shard owner.
#[derive(Clone, PartialEq, Message)]
pub struct ShardOwner {
    /// Node id.
    #[prost(uint64, required, tag = "1")]
    pub node_id: u64,
}

/// A subscription of a retention policy.
#[derive(Clone, PartialEq, Message)]
pub struct SubscriptionInfo {
    /// Name.
    #[prost(string, required, tag = "1")]
    pub name: String,
    /// "ALL" or "ANY".
    #[prost(string, required, tag = "2")]
    pub mode: String,
    /// Destination URLs.
    #[prost(string, repeated, tag = "3")]
    pub destinations: Vec<String>,
}

/// A continuous query (kept verbatim).
#[derive(Clone, PartialEq, Message)]
pub struct ContinuousQueryInfo {
    /// Name.
    #[prost(string, required, tag = "1")]
    pub name: String,
    /// Full `CREATE CONTINUOUS QUERY …` text.
    #[prost(string, required, tag = "2")]
    pub query: String,
}

/// A user.
#[derive(Clone, PartialEq, Message)]
pub struct UserInfo {
    /// Name.
    #[prost(string, required, tag = "1")]
    pub name: String,
    /// bcrypt hash.
    #[prost(string, required, tag = "2")]
    pub hash: String,
    /// Cluster admin.
    #[prost(bool, required, tag = "3")]
    pub admin: bool,
    /// Per-database grants.
    #[prost(message, repeated, tag = "4")]
    pub privileges: Vec<UserPrivilege>,
}

/// A grant on one database.
#[derive(Clone, PartialEq, Message)]
pub struct UserPrivilege {
    /// Database name.
    #[prost(string, required, tag = "1")]
    pub database: String,
    /// 0 none, 1 read, 2 write, 3 all.
    #[prost(int32, required, tag = "2")]
    pub privilege: i32,
}

/// The portable backup `.meta` file (`backup_util.PortableData`).
#[derive(Clone, PartialEq, Message)]
pub struct PortableData {
    /// The `meta.Data` blob.
    #[prost(bytes = "vec", required, tag = "1")]
    pub data: Vec<u8>,
    /// Always 0 from OSS.
    #[prost(uint64, required, tag = "2")]
    pub max_node_id: u64,
}

impl Data {
    /// Decodes a `meta.Data` blob, bounded by [`MAX_META_BYTES`].
    pub fn decode_blob(blob: &[u8]) -> Result<Data> {
        if blob.len() > MAX_META_BYTES {
            return Err(StoreError::LimitExceeded {
                what: "meta blob",
                limit: MAX_META_BYTES as u64,
                got: blob.len() as u64,
            });
        }
        Data::decode(blob).map_err(|e| {
            InvalidInput::MetaBlob {
                format: MetaFormat::MetaData,
                detail: e.to_string(),
            }
            .into()
        })
    }

    /// Encodes to a `meta.Data` blob.
    pub fn encode_blob(&self) -> Vec<u8> {
        self.encode_to_vec()
    }

    /// A database by name.
    pub fn database(&self, name: &str) -> Option<&DatabaseInfo> {
        self.databases.iter().find(|d| d.name == name)
    }

    /// A database by name, mutable.
    pub fn database_mut(&mut self, name: &str) -> Option<&mut DatabaseInfo> {
        self.databases.iter_mut().find(|d| d.name == name)
    }
}

impl DatabaseInfo {
    /// A retention policy by name.
    pub fn retention_policy(&self, name: &str) -> Option<&RetentionPolicyInfo> {
        self.retention_policies.iter().find(|r| r.name == name)
    }

    /// A retention policy by name, mutable.
    pub fn retention_policy_mut(&mut self, name: &str) -> Option<&mut RetentionPolicyInfo> {
        self.retention_policies.iter_mut().find(|r| r.name == name)
    }
}

impl PortableData {
    /// Decodes a portable `.meta` file's bytes and returns the wrapped `meta.Data` blob.
    pub fn unwrap_blob(file: &[u8]) -> Result<Vec<u8>> {
        if file.len() > MAX_META_BYTES + 64 {
            return Err(StoreError::LimitExceeded {
                what: "portable meta file",
                limit: MAX_META_BYTES as u64,
                got: file.len() as u64,
            });
        }
        PortableData::decode(file).map(|p| p.data).map_err(|e| {
            InvalidInput::MetaBlob {
                format: MetaFormat::PortableData,
                detail: e.to_string(),
            }
            .into()
        })
    }
}
