//! Cluster membership as of an index, replayed from the `ConfChange` entries, so a restore
//! can write the WAL metadata of a member that existed at the target.

use std::collections::BTreeMap;

use prost::Message;
use serde::{Deserialize, Serialize};
use snapshotd_wal::Entry;

use crate::pb::{CC_ADD, CC_ADD_LEARNER, CC_REMOVE, CC_UPDATE, ConfChange, ENTRY_CONF_CHANGE};

/// A committed `ConfChangeUpdateNode` entry at `index` giving member `id` new peer URLs
/// (the context is etcd's member JSON, as `etcdctl member update` proposes it).
pub fn update_peer_urls(index: u64, term: u64, id: u64, name: &str, urls: &[String]) -> Entry {
    let ctx = serde_json::json!({"id": id, "peerURLs": urls, "name": name});
    let cc = ConfChange {
        id: index,
        r#type: CC_UPDATE,
        node_id: id,
        context: Some(ctx.to_string().into_bytes()),
    };
    Entry {
        r#type: ENTRY_CONF_CHANGE,
        term,
        index,
        data: Some(cc.encode_to_vec()),
    }
}

/// A member as etcd describes it in a `ConfChange` context.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Member {
    /// Raft id.
    #[serde(default)]
    pub id: u64,
    /// Name (may be empty until the member published it).
    #[serde(default)]
    pub name: String,
    /// Peer URLs.
    #[serde(default, rename = "peerURLs")]
    pub peer_urls: Vec<String>,
    /// Client URLs (published by the member once it runs).
    #[serde(default, rename = "clientURLs")]
    pub client_urls: Vec<String>,
}

/// Members by id, built by applying conf changes in index order.
#[derive(Debug, Clone, Default)]
pub struct Membership {
    /// The current members.
    pub members: BTreeMap<u64, Member>,
}

impl Membership {
    /// Applies `e` when it is a conf change (others are ignored).
    pub fn apply(&mut self, e: &Entry) {
        if e.r#type != ENTRY_CONF_CHANGE {
            return;
        }
        let Ok(cc) = ConfChange::decode(e.data.as_deref().unwrap_or_default()) else {
            return;
        };
        let ctx: Member = cc
            .context
            .as_deref()
            .and_then(|c| serde_json::from_slice(c).ok())
            .unwrap_or_default();
        match cc.r#type {
            CC_ADD | CC_ADD_LEARNER => {
                let m = Member {
                    id: cc.node_id,
                    ..ctx
                };
                self.members.insert(cc.node_id, m);
            }
            CC_REMOVE => {
                self.members.remove(&cc.node_id);
            }
            CC_UPDATE => {
                if let Some(m) = self.members.get_mut(&cc.node_id) {
                    m.peer_urls = ctx.peer_urls;
                }
            }
            _ => {}
        }
    }

    /// The member named `name`, else the one with the lowest id.
    pub fn pick(&self, name: Option<&str>) -> Option<&Member> {
        name.and_then(|n| self.members.values().find(|m| m.name == n))
            .or_else(|| self.members.values().next())
    }
}
