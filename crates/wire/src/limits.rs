//! Hard size limits applied by every decoder before it allocates.

/// Upper bounds on every length read from the wire or from a portable backup file.
///
/// Each bound is checked *before* any buffer is reserved for the data it governs, and each
/// violation is reported as its own [`WireError`](crate::WireError) variant. The defaults are
/// generous for real metastores (influx metas are kilobytes to a few megabytes) and small
/// enough that a hostile peer cannot make a decoder allocate more than ~64 MiB per frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum bytes of a JSON request object (leading whitespace included, newline excluded).
    pub max_request_json: usize,
    /// Maximum `UploadSize` (type-6 payload bytes) a server accepts.
    pub max_upload_size: u64,
    /// Maximum bytes of an info response (`{"Paths":[...]}`) a client accepts.
    pub max_info_response: usize,
    /// Maximum number of pairs in a shard-id map reply.
    pub max_id_map_pairs: u64,
    /// Maximum `metaLen` of a meta-backup frame (also caps `.meta` files and summaries).
    pub max_meta_blob: u64,
    /// Maximum `nodeLen` of a meta-backup frame.
    pub max_node_json: u64,
    /// Maximum body length of an in-band error reply (snapshotd extension).
    pub max_error_reply: u64,
}

impl Limits {
    /// 64 KiB: a Go client's request is ~250 bytes plus the names it carries.
    pub const DEFAULT_REQUEST_JSON: usize = 64 * 1024;
    /// 64 MiB for metastore uploads and meta blobs.
    pub const DEFAULT_META_BLOB: u64 = 64 * 1024 * 1024;
    /// 16 MiB of shard paths (~500k shards).
    pub const DEFAULT_INFO_RESPONSE: usize = 16 * 1024 * 1024;
    /// 1 Mi pairs (16 MiB of reply).
    pub const DEFAULT_ID_MAP_PAIRS: u64 = 1 << 20;
    /// 64 KiB of node JSON (influx OSS always sends the 5 bytes `null\n`).
    pub const DEFAULT_NODE_JSON: u64 = 64 * 1024;
    /// 64 KiB of error-reply JSON.
    pub const DEFAULT_ERROR_REPLY: u64 = 64 * 1024;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_json: Self::DEFAULT_REQUEST_JSON,
            max_upload_size: Self::DEFAULT_META_BLOB,
            max_info_response: Self::DEFAULT_INFO_RESPONSE,
            max_id_map_pairs: Self::DEFAULT_ID_MAP_PAIRS,
            max_meta_blob: Self::DEFAULT_META_BLOB,
            max_node_json: Self::DEFAULT_NODE_JSON,
            max_error_reply: Self::DEFAULT_ERROR_REPLY,
        }
    }
}
