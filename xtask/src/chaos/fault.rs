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
}

impl Workload {
    /// Every workload.
    pub const ALL: [Workload; 3] = [Workload::Backup, Workload::Restore, Workload::Serve];

    /// Short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Backup => "backup<-influxd",
            Workload::Restore => "restore->influxd",
            Workload::Serve => "backup<-serve",
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
            _ => return None,
        })
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
        )
    }

    /// Whether the fault applies to workload `w`.
    pub fn applies(self, w: Workload) -> bool {
        match self {
            Fault::KillServer | Fault::StopServer | Fault::Load(_) => w == Workload::Serve,
            Fault::KillInfluxd | Fault::StopInfluxd => w != Workload::Serve,
            Fault::Enospc | Fault::ReadOnly => w != Workload::Restore,
            _ => true,
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
    ]
}
