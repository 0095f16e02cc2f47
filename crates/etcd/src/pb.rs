//! The two etcd messages the archive needs to understand: the WAL metadata record
//! (`etcdserverpb.Metadata`) and raft configuration changes (`raftpb.ConfChange`).
//! Scalars are proto2 `required` so they are always written, as etcd's gogo code does.

use prost::Message;

/// `etcdserverpb.Metadata`: the WAL metadata record of an etcd member.
#[derive(Clone, Copy, PartialEq, Eq, Message)]
pub struct Metadata {
    /// The member's raft id.
    #[prost(uint64, required, tag = "1")]
    pub node_id: u64,
    /// The cluster id.
    #[prost(uint64, required, tag = "2")]
    pub cluster_id: u64,
}

/// `raftpb.ConfChange`: the payload of an `EntryConfChange` entry.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct ConfChange {
    /// Request id.
    #[prost(uint64, required, tag = "1")]
    pub id: u64,
    /// 0 add, 1 remove, 2 update, 3 add learner.
    #[prost(int32, required, tag = "2")]
    pub r#type: i32,
    /// The member concerned.
    #[prost(uint64, required, tag = "3")]
    pub node_id: u64,
    /// JSON of the member (add / update).
    #[prost(bytes = "vec", optional, tag = "4")]
    pub context: Option<Vec<u8>>,
}

/// Raft entry type of a `ConfChange` entry.
pub const ENTRY_CONF_CHANGE: i32 = 1;
/// `ConfChangeAddNode`.
pub const CC_ADD: i32 = 0;
/// `ConfChangeRemoveNode`.
pub const CC_REMOVE: i32 = 1;
/// `ConfChangeUpdateNode`.
pub const CC_UPDATE: i32 = 2;
/// `ConfChangeAddLearnerNode`.
pub const CC_ADD_LEARNER: i32 = 3;

/// Decodes WAL metadata bytes; `None` when they are not an etcd `Metadata`.
pub fn decode_metadata(bytes: &[u8]) -> Option<Metadata> {
    Metadata::decode(bytes).ok()
}

/// Encodes WAL metadata as etcd does.
pub fn encode_metadata(m: &Metadata) -> Vec<u8> {
    m.encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_writes_both_fields_even_zero() {
        let m = Metadata {
            node_id: 0,
            cluster_id: 5,
        };
        assert_eq!(encode_metadata(&m), vec![0x08, 0x00, 0x10, 0x05]);
        assert_eq!(decode_metadata(&[0x08, 0x00, 0x10, 0x05]), Some(m));
    }
}
