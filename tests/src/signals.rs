//! Signal dispositions the peers need: a handler that interrupts system calls, and SIGPIPE back
//! to its default (fatal) action.

use std::sync::atomic::{AtomicU64, Ordering};

static CAUGHT: AtomicU64 = AtomicU64::new(0);

extern "C" fn count_signal(_: libc::c_int) {
    // Atomics are async-signal-safe.
    CAUGHT.fetch_add(1, Ordering::Relaxed);
}

/// Installs a handler for `sig` that only counts, *without* `SA_RESTART`: a system call it
/// interrupts fails with `EINTR` instead of being restarted by the kernel, which is the case
/// the library must handle itself.
pub fn install_counting_handler(sig: libc::c_int) -> std::io::Result<()> {
    // SAFETY: an all-zero `sigaction` is a valid value (empty mask, no flags), filled in below.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = count_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    action.sa_flags = 0;
    // SAFETY: `sa_mask` is a valid sigset_t owned by `action`.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    // SAFETY: the handler only touches an atomic (async-signal-safe), and `action` outlives the
    // call; a null old-action pointer is allowed.
    let rc = unsafe { libc::sigaction(sig, &action, std::ptr::null_mut()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// How many signals the counting handler has caught so far.
pub fn caught() -> u64 {
    CAUGHT.load(Ordering::Relaxed)
}

/// Puts SIGPIPE back to its default action, killing the process on a write to a pipe without
/// readers. Rust programs start with SIGPIPE ignored; C programs (and Rust programs built with
/// `-Zon-broken-pipe=kill`) do not, and the library must not die in them.
pub fn reset_sigpipe() -> std::io::Result<()> {
    // SAFETY: setting a disposition to SIG_DFL installs no handler code; done at start-up in
    // the peer, before any other thread exists.
    let old = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    if old == libc::SIG_ERR {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}
