//! The deflating threads of a [`super::ParallelGz`].

use std::io;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, SyncSender};

use super::encode_member;

/// One chunk for a worker, with the buffer its member goes into.
pub(super) struct Job {
    pub(super) data: Vec<u8>,
    pub(super) out: Vec<u8>,
    pub(super) level: u32,
    pub(super) filename: Option<Vec<u8>>,
    pub(super) reply: SyncSender<Done>,
}

/// A worker's answer: the chunk buffer back (for reuse) and the member.
pub(super) struct Done {
    pub(super) data: Vec<u8>,
    pub(super) level: u32,
    pub(super) member: io::Result<Vec<u8>>,
}

/// Deflates jobs until the job channel closes.
pub(super) fn worker(rx: &Mutex<Receiver<Job>>) {
    loop {
        let job = match rx.lock() {
            Ok(r) => r.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let Job {
            data,
            mut out,
            level,
            filename,
            reply,
        } = job;
        out.clear();
        // A stored member is its data plus 5 bytes per 64 KiB block and the framing:
        // reserving that once keeps the recycled buffer from doubling.
        out.reserve(data.len() + data.len() / 8192 + 1024);
        let member = encode_member(&data, level, filename.as_deref(), out);
        // The writer may have been abandoned; then nobody waits for this member.
        let _ = reply.send(Done {
            data,
            level,
            member,
        });
    }
}
