//! The only place in this crate that calls into libc directly: OFD record locks,
//! `fallocate`, `sync_file_range` and, behind the opt-in `tuning` feature, the thread's
//! scheduler slice (`sched_setattr`). Everything here is a thin, documented wrapper over one
//! syscall.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;

/// Kind of OFD lock to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockKind {
    /// `F_WRLCK`: exclusive; the file must be open for writing.
    Exclusive,
    /// `F_RDLCK`: shared; the file must be open for reading.
    Shared,
}

/// Outcome of a non-blocking lock attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TryLock {
    /// The lock is now held by this open file description.
    Acquired,
    /// Another open file description holds a conflicting lock.
    WouldBlock,
}

#[cfg(target_os = "linux")]
mod imp {
    use super::{LockKind, TryLock};
    use std::fs::File;
    use std::io;
    use std::os::fd::AsRawFd;

    fn whole_file(kind: LockKind) -> libc::flock {
        // SAFETY: `flock` is a plain C struct of integers; all-zero is a valid value and we
        // then set every field fcntl reads (type, whence, start, len; pid must be 0 for OFD).
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = match kind {
            LockKind::Exclusive => libc::F_WRLCK as libc::c_short,
            LockKind::Shared => libc::F_RDLCK as libc::c_short,
        };
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        fl.l_start = 0;
        fl.l_len = 0;
        fl.l_pid = 0;
        fl
    }

    pub(crate) fn try_lock(file: &File, kind: LockKind) -> io::Result<TryLock> {
        let fl = whole_file(kind);
        // SAFETY: the fd is valid for the lifetime of `file`; `fl` is a valid, initialised
        // `struct flock` that outlives the call; F_OFD_SETLK only reads it.
        let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &fl) };
        if rc == 0 {
            return Ok(TryLock::Acquired);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(TryLock::WouldBlock),
            _ => Err(err),
        }
    }

    pub(crate) fn lock(file: &File, kind: LockKind) -> io::Result<()> {
        let fl = whole_file(kind);
        loop {
            // SAFETY: as in `try_lock`; F_OFD_SETLKW blocks until the lock is granted.
            let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLKW, &fl) };
            if rc == 0 {
                return Ok(());
            }
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EINTR) {
                return Err(err);
            }
        }
    }

    /// `fallocate(fd, 0, 0, len)`: extend the file to at least `len` bytes with allocated,
    /// zero-reading blocks. Returns `Ok(false)` when the filesystem does not support it.
    pub(crate) fn fallocate(file: &File, len: u64) -> io::Result<bool> {
        let Ok(len) = libc::off_t::try_from(len) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "length overflows off_t",
            ));
        };
        // SAFETY: the fd is valid for the lifetime of `file`; mode 0 with offset 0 and a
        // non-negative length has no memory-safety preconditions.
        let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) };
        if rc == 0 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            // Not supported, or interrupted (frequent in some environments): fall back.
            Some(libc::EINTR) | Some(libc::EOPNOTSUPP) => Ok(false),
            _ => Err(err),
        }
    }

    /// `sync_file_range(fd, off, len, SYNC_FILE_RANGE_WRITE)`: start writeback of the dirty
    /// pages in the range without waiting for it (no durability; a later fdatasync still is).
    pub(crate) fn start_writeback(file: &File, off: u64, len: u64) -> io::Result<()> {
        let (Ok(off), Ok(len)) = (libc::off64_t::try_from(off), libc::off64_t::try_from(len))
        else {
            return Ok(());
        };
        // SAFETY: the fd is valid for the lifetime of `file`; the call only reads its scalar
        // arguments and has no memory-safety preconditions.
        let rc = unsafe {
            libc::sync_file_range(file.as_raw_fd(), off, len, libc::SYNC_FILE_RANGE_WRITE)
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// `struct sched_attr` (SCHED_ATTR_SIZE_VER1).
    #[cfg(feature = "tuning")]
    #[repr(C)]
    #[derive(Debug, Default, Clone, Copy)]
    struct SchedAttr {
        size: u32,
        policy: u32,
        flags: u64,
        nice: i32,
        priority: u32,
        runtime: u64,
        deadline: u64,
        period: u64,
        util_min: u32,
        util_max: u32,
    }

    #[cfg(feature = "tuning")]
    fn get_attr() -> io::Result<SchedAttr> {
        let mut a = SchedAttr::default();
        let size = std::mem::size_of::<SchedAttr>() as libc::c_uint;
        // SAFETY: pid 0 = the calling thread; `a` is a writable, correctly sized sched_attr
        // and `size` tells the kernel how much it may write.
        let rc = unsafe { libc::syscall(libc::SYS_sched_getattr, 0, &mut a, size, 0) };
        if rc == 0 {
            Ok(a)
        } else {
            Err(io::Error::last_os_error())
        }
    }

    #[cfg(feature = "tuning")]
    fn set_attr(a: &SchedAttr) -> io::Result<()> {
        let mut a = *a;
        a.size = std::mem::size_of::<SchedAttr>() as u32;
        // SAFETY: pid 0 = the calling thread; `a` is an initialised sched_attr whose size
        // field matches its layout; the kernel only reads it.
        let rc = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &a, 0) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Sets the calling thread's fair-class time slice to `ns` when it is a normal thread
    /// with a longer one. `Ok(false)`: nothing to change (other policy, or already short).
    #[cfg(feature = "tuning")]
    pub(crate) fn set_thread_slice(ns: u64) -> io::Result<bool> {
        let mut a = get_attr()?;
        let fair = a.policy == libc::SCHED_OTHER as u32 || a.policy == libc::SCHED_BATCH as u32;
        if !fair || (a.runtime != 0 && a.runtime <= ns) {
            return Ok(false);
        }
        a.runtime = ns;
        set_attr(&a)?;
        Ok(true)
    }

    /// The calling thread's current time slice in nanoseconds (for tests).
    #[cfg(all(test, feature = "tuning"))]
    pub(crate) fn thread_slice() -> io::Result<u64> {
        Ok(get_attr()?.runtime)
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    //! Other platforms: whole-file `flock` through fs2 (what etcd does off Linux).
    use super::{LockKind, TryLock};
    use fs2::FileExt;
    use std::fs::File;
    use std::io;

    pub(crate) fn try_lock(file: &File, kind: LockKind) -> io::Result<TryLock> {
        let r = match kind {
            LockKind::Exclusive => file.try_lock_exclusive(),
            LockKind::Shared => FileExt::try_lock_shared(file),
        };
        match r {
            Ok(()) => Ok(TryLock::Acquired),
            Err(e) if e.raw_os_error() == fs2::lock_contended_error().raw_os_error() => {
                Ok(TryLock::WouldBlock)
            }
            Err(e) => Err(e),
        }
    }

    pub(crate) fn lock(file: &File, kind: LockKind) -> io::Result<()> {
        match kind {
            LockKind::Exclusive => file.lock_exclusive(),
            LockKind::Shared => FileExt::lock_shared(file),
        }
    }

    pub(crate) fn fallocate(file: &File, len: u64) -> io::Result<bool> {
        fs2::FileExt::allocate(file, len).map(|()| true)
    }

    pub(crate) fn start_writeback(_file: &File, _off: u64, _len: u64) -> io::Result<()> {
        Ok(())
    }

    #[cfg(feature = "tuning")]
    pub(crate) fn set_thread_slice(_ns: u64) -> io::Result<bool> {
        Ok(false)
    }

    #[cfg(all(test, feature = "tuning"))]
    pub(crate) fn thread_slice() -> io::Result<u64> {
        Ok(0)
    }
}

/// Non-blocking whole-file lock (OFD on Linux).
pub(crate) fn try_lock(file: &File, kind: LockKind) -> io::Result<TryLock> {
    imp::try_lock(file, kind)
}

/// Blocking whole-file lock (OFD on Linux).
pub(crate) fn lock(file: &File, kind: LockKind) -> io::Result<()> {
    imp::lock(file, kind)
}

/// Extends `file` to `len` bytes of allocated zeros; falls back to `set_len` when the
/// filesystem cannot preallocate (as etcd does on ENOTSUP/EINTR). Never shrinks.
pub(crate) fn preallocate(file: &File, len: u64) -> io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    if imp::fallocate(file, len)? {
        return Ok(());
    }
    if file.metadata()?.len() < len {
        file.set_len(len)?;
    }
    Ok(())
}

/// Asks the kernel to start writing back `len` bytes at `off` now, so the fdatasync that
/// follows has less left to wait for. Advisory: a no-op off Linux.
pub(crate) fn start_writeback(file: &File, off: u64, len: u64) -> io::Result<()> {
    imp::start_writeback(file, off, len)
}

/// Sets the calling thread's scheduler time slice (Linux EEVDF custom slice, `sched_setattr`
/// with `sched_runtime`) to `ns` if it is a normal thread with a longer one; a no-op
/// elsewhere. Returns whether it changed anything.
#[cfg(feature = "tuning")]
pub(crate) fn set_thread_slice(ns: u64) -> io::Result<bool> {
    imp::set_thread_slice(ns)
}

/// The calling thread's scheduler time slice in nanoseconds (0 where unknown).
#[cfg(all(test, feature = "tuning"))]
pub(crate) fn thread_slice() -> io::Result<u64> {
    imp::thread_slice()
}
