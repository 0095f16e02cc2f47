//! A raft snapshot file (`member/snap/<term:016x>-<index:016x>.snap`) as etcd 3.4 loads it
//! at boot: `snappb.Snapshot{crc, data}` where `crc` is the CRC-32C of `data` and `data` is
//! a `raftpb.Snapshot` whose payload is the v2 store as JSON. The v2 store holds the cluster
//! membership (`/0/members/<id>/raftAttributes` and `attributes`); etcd rebuilds the
//! membership from it and raft's voters from the metadata's conf state.

use prost::Message;
use serde_json::{Value, json};

use crate::membership::Member;

/// `raftpb.ConfState` (voters only; proto2, unpacked as etcd writes it).
#[derive(Clone, PartialEq, Message)]
struct ConfState {
    #[prost(uint64, repeated, packed = "false", tag = "1")]
    voters: Vec<u64>,
    #[prost(bool, optional, tag = "5")]
    auto_leave: Option<bool>,
}

/// `raftpb.SnapshotMetadata`.
#[derive(Clone, PartialEq, Message)]
struct SnapshotMetadata {
    #[prost(message, required, tag = "1")]
    conf_state: ConfState,
    #[prost(uint64, required, tag = "2")]
    index: u64,
    #[prost(uint64, required, tag = "3")]
    term: u64,
}

/// `raftpb.Snapshot`.
#[derive(Clone, PartialEq, Message)]
struct RaftSnapshot {
    #[prost(bytes = "vec", optional, tag = "1")]
    data: Option<Vec<u8>>,
    #[prost(message, required, tag = "2")]
    metadata: SnapshotMetadata,
}

/// `snappb.Snapshot`: the file's content.
#[derive(Clone, PartialEq, Message)]
struct SnapFile {
    #[prost(uint32, required, tag = "1")]
    crc: u32,
    #[prost(bytes = "vec", optional, tag = "2")]
    data: Option<Vec<u8>>,
}

/// The file name etcd gives the snapshot at (`term`, `index`).
pub fn file_name(term: u64, index: u64) -> String {
    format!("{term:016x}-{index:016x}.snap")
}

/// The bytes of a `.snap` file for raft index `index` at `term` whose membership is
/// `members` (all voters).
pub fn encode(index: u64, term: u64, members: &[Member]) -> Vec<u8> {
    let store = v2_store(members).to_string().into_bytes();
    let raft = RaftSnapshot {
        data: Some(store),
        metadata: SnapshotMetadata {
            conf_state: ConfState {
                voters: members.iter().map(|m| m.id).collect(),
                auto_leave: Some(false),
            },
            index,
            term,
        },
    };
    let data = raft.encode_to_vec();
    SnapFile {
        crc: crc32c::crc32c(&data),
        data: Some(data),
    }
    .encode_to_vec()
}

/// The v2 store JSON holding only the membership (the keyspace lives in the db).
fn v2_store(members: &[Member]) -> Value {
    let mut dirs = serde_json::Map::new();
    for m in members {
        let dir = format!("/0/members/{:x}", m.id);
        let mut children = serde_json::Map::new();
        let raft = json!({"peerURLs": m.peer_urls});
        children.insert("raftAttributes".into(), leaf(&dir, "raftAttributes", &raft));
        if !m.name.is_empty() || !m.client_urls.is_empty() {
            let attrs = json!({"name": m.name, "clientURLs": m.client_urls});
            children.insert("attributes".into(), leaf(&dir, "attributes", &attrs));
        }
        dirs.insert(format!("{:x}", m.id), node(&dir, Value::Object(children)));
    }
    let members_dir = node("/0/members", Value::Object(dirs));
    let zero = node("/0", json!({ "members": members_dir }));
    let one = node("/1", json!({}));
    json!({
        "Root": node("/", json!({"0": zero, "1": one})),
        "CurrentIndex": 1,
        "CurrentVersion": 2,
    })
}

fn node(path: &str, children: Value) -> Value {
    json!({
        "Path": path, "CreatedIndex": 1, "ModifiedIndex": 1,
        "ExpireTime": "0001-01-01T00:00:00Z", "Value": "", "Children": children,
    })
}

fn leaf(dir: &str, name: &str, value: &Value) -> Value {
    json!({
        "Path": format!("{dir}/{name}"), "CreatedIndex": 1, "ModifiedIndex": 1,
        "ExpireTime": "0001-01-01T00:00:00Z", "Value": value.to_string(), "Children": null,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snap_file_round_trips_with_crc_and_membership() {
        let m = Member {
            id: 0xbdae,
            name: "n1".into(),
            peer_urls: vec!["http://127.0.0.1:2380".into()],
            client_urls: vec![],
        };
        let bytes = encode(42, 3, std::slice::from_ref(&m));
        let f = SnapFile::decode(bytes.as_slice()).unwrap();
        let data = f.data.unwrap();
        assert_eq!(f.crc, crc32c::crc32c(&data));
        let raft = RaftSnapshot::decode(data.as_slice()).unwrap();
        assert_eq!((raft.metadata.index, raft.metadata.term), (42, 3));
        assert_eq!(raft.metadata.conf_state.voters, vec![0xbdae]);
        let store: Value = serde_json::from_slice(&raft.data.unwrap()).unwrap();
        let ra = &store["Root"]["Children"]["0"]["Children"]["members"]["Children"]["bdae"]["Children"]
            ["raftAttributes"];
        assert_eq!(ra["Path"], "/0/members/bdae/raftAttributes");
        assert_eq!(ra["Value"], r#"{"peerURLs":["http://127.0.0.1:2380"]}"#);
        assert_eq!(file_name(3, 42), "0000000000000003-000000000000002a.snap");
    }
}
