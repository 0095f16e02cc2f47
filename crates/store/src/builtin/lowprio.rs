//! A thread at a lower CPU priority for the CPU-heavy parts of compactions and merges
//! (decoding the log, encoding and merging TSM files), so writes win the CPU over them.
//! The commits, which hold a shard's lock, stay on the calling thread at the store's
//! priority: a low-priority thread holding the lock would make writes wait for the CPU
//! it cannot get (priority inversion).

use std::sync::mpsc::{Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::lock;
use crate::error::{Result, StoreError};

type Job = Box<dyn FnOnce() + Send>;

/// Where heavy work runs: on a low-priority worker thread, or inline.
#[derive(Clone, Default)]
pub(crate) struct Offload(Option<Arc<Worker>>);

/// The worker thread and its queue.
struct Worker {
    tx: Mutex<Option<Sender<Job>>>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl Offload {
    /// Starts a worker thread whose nice value is `nice` higher than the caller's.
    pub(crate) fn start(nice: i32) -> std::io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let handle = std::thread::Builder::new()
            .name("snapshotd-encoder".into())
            .spawn(move || work(nice, &rx))?;
        Ok(Offload(Some(Arc::new(Worker {
            tx: Mutex::new(Some(tx)),
            handle: Mutex::new(Some(handle)),
        }))))
    }

    /// Runs `f` on the worker (inline when there is none or it has stopped) and waits.
    pub(crate) fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R> {
        let (tx, rx): (SyncSender<R>, Receiver<R>) = std::sync::mpsc::sync_channel(1);
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        let queue = self.0.as_ref().and_then(|w| lock(&w.tx).clone());
        match queue {
            Some(q) => {
                if let Err(back) = q.send(job) {
                    (back.0)();
                }
            }
            None => job(),
        }
        rx.recv().map_err(|_| {
            StoreError::io(
                "compaction worker",
                std::io::Error::other("it stopped mid-job"),
            )
        })
    }

    /// Stops the worker after its current job and waits for it.
    pub(crate) fn stop(&self) {
        if let Some(w) = &self.0 {
            lock(&w.tx).take();
            if let Some(h) = lock(&w.handle).take() {
                let _ = h.join();
            }
        }
    }
}

fn work(nice: i32, rx: &Receiver<Job>) {
    if nice > 0
        && let Err(e) = super::sys::lower_thread_priority(nice)
    {
        tracing::warn!(error = %e, "could not lower the compaction worker's priority");
    }
    while let Ok(job) = rx.recv() {
        job();
    }
}
