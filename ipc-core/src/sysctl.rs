//! The kernel limits every backend reports in its `LimitExceeded` errors, read where the
//! kernel publishes them.

/// The value of the numeric sysctl `name` (dotted, as `sysctl(8)` and our errors spell it:
/// `"kernel.msgmax"`), or `None` where `/proc/sys` cannot be read or holds no single number
/// (a container without `/proc`, a sysctl of several fields).
///
/// ```
/// assert!(ipc_core::sysctl("kernel.pid_max").is_some_and(|max| max > 0));
/// assert_eq!(ipc_core::sysctl("no.such.sysctl"), None);
/// ```
pub fn sysctl(name: &str) -> Option<u64> {
    let path = format!("/proc/sys/{}", name.replace('.', "/"));
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}
