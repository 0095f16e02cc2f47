//! The only place in this crate that calls into libc directly: lowering the CPU priority of
//! the calling thread (the compactor), so that writes competing with it for the CPU win.
//! A thin, documented wrapper over one syscall.
#![allow(unsafe_code)]

/// Raises the calling thread's nice value by `by` (a lower priority; Linux keeps the nice
/// value per thread). Returns the new nice value. Elsewhere than on Linux it does nothing.
#[cfg(target_os = "linux")]
pub(crate) fn lower_thread_priority(by: i32) -> std::io::Result<i32> {
    // SAFETY: gettid takes no arguments and cannot fail.
    let tid = unsafe { libc::gettid() };
    let Ok(who) = libc::id_t::try_from(tid) else {
        return Err(std::io::Error::other("negative thread id"));
    };
    // SAFETY: getpriority/setpriority take plain integers; -1 is a valid nice value, so
    // errno is cleared first and checked after.
    unsafe { *libc::__errno_location() = 0 };
    let now = unsafe { libc::getpriority(libc::PRIO_PROCESS, who) };
    let err = std::io::Error::last_os_error();
    if now == -1 && err.raw_os_error().is_some_and(|e| e != 0) {
        return Err(err);
    }
    let want = now.saturating_add(by).clamp(-20, 19);
    // SAFETY: as above; `who` is this thread's id.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, who, want) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(want)
}

/// Elsewhere than on Linux: does nothing.
#[cfg(not(target_os = "linux"))]
pub(crate) fn lower_thread_priority(_by: i32) -> std::io::Result<i32> {
    Ok(0)
}
