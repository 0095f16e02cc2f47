//! The faults a round can inject, where they apply, and the words a correct failure message
//! must contain for each.

use super::load::Load;

/// What a round runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// `snapshotd backup` from influxd 1.6.7 (checked by restoring into influxd and counting).
    Backup,
    /// `snapshotd restore` of a verified backup into influxd 1.6.7 (checked by counting).
    Restore,
    /// `snapshotd backup` from `snapshotd serve` (checked by verify and an acknowledged
    /// restore into the server).
    Serve,
    /// `snapshotd backup` from influxd to `s3://` through moto (checked by verify and a
    /// restore from S3 into influxd).
    S3Backup,
    /// `snapshotd restore` from `s3://` into influxd (checked by counting).
    S3Restore,
    /// `/write` into a `snapshotd serve` whose data dir is a small tmpfs (checked by a
    /// crash-restart, a backup and a count of the acknowledged points in influxd).
    Ingest,
    /// `snapshotd etcd archive` of a real etcd 3.4.23 member under puts (checked by status,
    /// verify, restore and the restored member serving every acknowledged put).
    Etcd,
    /// The same archive to `s3://` through the proxy in front of moto.
    EtcdS3,
    /// `snapshotd verify` of a local copy of the baseline (checked by its exit and output).
    Verify,
}

impl Workload {
    /// Every workload.
    pub const ALL: [Workload; 9] = [
        Workload::Backup,
        Workload::Restore,
        Workload::Serve,
        Workload::S3Backup,
        Workload::S3Restore,
        Workload::Ingest,
        Workload::Etcd,
        Workload::EtcdS3,
        Workload::Verify,
    ];

    /// Whether the workload's destination or source is `s3://`.
    pub fn s3(self) -> bool {
        matches!(
            self,
            Workload::S3Backup | Workload::S3Restore | Workload::EtcdS3
        )
    }

    /// Whether it runs one client command through a proxy (the network faults apply).
    pub fn proxied(self) -> bool {
        !matches!(self, Workload::Ingest | Workload::Etcd | Workload::Verify)
    }

    /// Short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Backup => "backup<-influxd",
            Workload::Restore => "restore->influxd",
            Workload::Serve => "backup<-serve",
            Workload::S3Backup => "backup->s3",
            Workload::S3Restore => "restore<-s3",
            Workload::Ingest => "write->serve",
            Workload::Etcd => "etcd archive",
            Workload::EtcdS3 => "etcd archive->s3",
            Workload::Verify => "verify<-dir",
        }
    }
}
use super::proxy::Mode;

/// One injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Nothing (the baseline).
    None,
    /// Proxy holds every reply chunk 50 ms.
    Delay,
    /// Proxy forwards at most 256 KiB/s each way.
    Throttle,
    /// Proxy resets connections mid-stream.
    Reset,
    /// Proxy half-closes connections mid-stream (FIN to the client).
    HalfClose,
    /// Proxy stops forwarding mid-stream without FIN.
    Blackhole,
    /// SIGKILL of `snapshotd serve` at a seeded moment (restarted afterwards).
    KillServer,
    /// SIGSTOP of `snapshotd serve` for 3 s, then SIGCONT.
    StopServer,
    /// SIGKILL of the client at a seeded moment.
    KillClient,
    /// SIGKILL of influxd at a seeded moment (restarted afterwards).
    KillInfluxd,
    /// SIGSTOP of influxd for 3 s, then SIGCONT.
    StopInfluxd,
    /// The destination is a 48 KiB tmpfs.
    Enospc,
    /// The destination is a read-only tmpfs.
    ReadOnly,
    /// Hostile load on the server.
    Load(Load),
    /// The proxy in front of moto answers a seeded 30 % of requests with 500 InternalError.
    S3Error,
    /// The proxy in front of moto answers a seeded 40 % of requests with 503 SlowDown.
    SlowDown,
    /// SIGKILL of moto (restarted afterwards, empty: moto keeps data in memory).
    KillS3,
    /// SIGSTOP of moto for 3 s, then SIGCONT.
    StopS3,
    /// The server's data dir (a tmpfs) is filled up while `/write` runs.
    StoreFull,
    /// The server's data dir is remounted read-only while `/write` runs.
    StoreReadOnly,
    /// SIGKILL of etcd (restarted afterwards).
    KillEtcd,
    /// SIGSTOP of etcd for 3 s, then SIGCONT.
    StopEtcd,
    /// SIGSTOP of the etcd archiver for 3 s (past its 2 s lease), then SIGCONT.
    StopClient,
    /// Writes and fsyncs fail with EIO after a seeded number of bytes (a FUSE layer) on the
    /// destination, or on the server's data dir (`write->serve`).
    Eio,
    /// Reads of one seeded file fail with EIO after a seeded number of bytes (the same FUSE
    /// layer): a shard archive of the backup a restore or verify reads or a resumed backup
    /// re-reads, or a TSM file of the data dir `snapshotd serve` backs up.
    EioRead,
}

impl Fault {
    /// Short name for tables.
    pub fn name(self) -> String {
        match self {
            Fault::Load(l) => format!("{l:?}").to_lowercase(),
            f => format!("{f:?}").to_lowercase(),
        }
    }

    /// The proxy mode of a network fault; `at` is the seeded byte offset of a cut.
    pub fn proxy(self, at: u64) -> Option<Mode> {
        Some(match self {
            Fault::Delay => Mode::Delay(50),
            Fault::Throttle => Mode::Throttle(256 * 1024),
            Fault::Reset => Mode::Reset(at),
            Fault::HalfClose => Mode::HalfClose(at),
            Fault::Blackhole => Mode::Blackhole(at),
            Fault::S3Error => Mode::HttpError {
                status: 500,
                per_mille: 300,
                seed: at,
            },
            Fault::SlowDown => Mode::HttpError {
                status: 503,
                per_mille: 400,
                seed: at,
            },
            _ => return None,
        })
    }

    /// Whether the fault is a filesystem under the destination or the data dir (a round
    /// mounts at most one).
    pub fn filesystem(self) -> bool {
        matches!(
            self,
            Fault::Enospc
                | Fault::ReadOnly
                | Fault::Eio
                | Fault::EioRead
                | Fault::StoreFull
                | Fault::StoreReadOnly
        )
    }

    /// Whether the fault sends a signal to a process.
    pub fn signals(self) -> bool {
        matches!(
            self,
            Fault::KillServer
                | Fault::StopServer
                | Fault::KillClient
                | Fault::KillInfluxd
                | Fault::StopInfluxd
                | Fault::KillS3
                | Fault::StopS3
                | Fault::KillEtcd
                | Fault::StopEtcd
                | Fault::StopClient
        )
    }

    /// Whether the fault applies to workload `w`.
    pub fn applies(self, w: Workload) -> bool {
        use Workload as W;
        match self {
            Fault::None => true,
            Fault::KillServer | Fault::StopServer | Fault::Load(_) => w == W::Serve,
            Fault::KillInfluxd | Fault::StopInfluxd => matches!(w, W::Backup | W::Restore),
            Fault::Enospc | Fault::ReadOnly => matches!(w, W::Backup | W::Serve | W::Etcd),
            // moto keeps its data in memory: a killed moto loses the archive itself.
            Fault::KillS3 => matches!(w, W::S3Backup | W::S3Restore),
            Fault::S3Error | Fault::SlowDown | Fault::StopS3 => w.s3(),
            Fault::StoreFull | Fault::StoreReadOnly => w == W::Ingest,
            Fault::Eio => matches!(w, W::Backup | W::Serve | W::Ingest),
            Fault::EioRead => matches!(w, W::Backup | W::Restore | W::Serve | W::Verify),
            Fault::KillEtcd | Fault::StopEtcd | Fault::StopClient => w == W::Etcd,
            Fault::KillClient => !matches!(w, W::Ingest | W::Verify | W::EtcdS3),
            Fault::Reset | Fault::HalfClose | Fault::Blackhole => w.proxied(),
            Fault::Delay | Fault::Throttle => w.proxied() && w != W::EtcdS3,
        }
    }

    /// Phrases (lower case) of which a failure caused by this fault must name one.
    pub fn phrases(self) -> &'static [&'static str] {
        match self {
            Fault::Reset => &["connection reset", "reset by peer"],
            Fault::HalfClose => &[
                "incomplete",
                "sent no data",
                "cut short",
                "closed mid-frame",
                "end of file before message length",
                "connection closed before message completed",
            ],
            Fault::Blackhole => &["timed out", "no progress for"],
            Fault::KillServer | Fault::KillInfluxd => &[
                "connection refused",
                "connection reset",
                "incomplete",
                "sent no data",
                "cut short",
                "broken pipe",
            ],
            Fault::Enospc => &["no space left"],
            Fault::ReadOnly => &["read-only file system"],
            Fault::Load(_) => &["server at connection limit"],
            Fault::S3Error => &["500", "internal error", "internalerror"],
            Fault::SlowDown => &["503", "slowdown", "slow down"],
            Fault::KillS3 => &[
                "connection refused",
                "connection reset",
                "connection closed",
                "error sending request",
            ],
            Fault::StopS3 | Fault::StopEtcd => &["timed out", "timeout", "no progress for"],
            Fault::StoreFull => &["no space left", "disk full"],
            Fault::StoreReadOnly => &["read-only file system"],
            Fault::KillEtcd => &[],
            // A paused archiver whose lease expired may stop, saying so.
            Fault::StopClient => &["lock", "lease", "fenced"],
            Fault::Eio | Fault::EioRead => &["input/output error", "os error 5"],
            Fault::StopServer | Fault::StopInfluxd | Fault::Delay | Fault::Throttle => {
                &["timed out", "no progress for"]
            }
            Fault::None | Fault::KillClient => &[],
        }
    }
}

/// Every single fault, in table order.
pub fn all() -> Vec<Fault> {
    vec![
        Fault::None,
        Fault::Delay,
        Fault::Throttle,
        Fault::Reset,
        Fault::HalfClose,
        Fault::Blackhole,
        Fault::KillServer,
        Fault::StopServer,
        Fault::KillClient,
        Fault::KillInfluxd,
        Fault::StopInfluxd,
        Fault::Enospc,
        Fault::ReadOnly,
        Fault::Load(Load::Slowloris),
        Fault::Load(Load::Churn),
        Fault::Load(Load::Malformed),
        Fault::Load(Load::WriteFlood),
        Fault::S3Error,
        Fault::SlowDown,
        Fault::KillS3,
        Fault::StopS3,
        Fault::StoreFull,
        Fault::StoreReadOnly,
        Fault::KillEtcd,
        Fault::StopEtcd,
        Fault::StopClient,
        Fault::Eio,
        Fault::EioRead,
    ]
}
