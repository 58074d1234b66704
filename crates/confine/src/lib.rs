//! OS confinement of the current process, for the processes that host an engine running
//! untrusted programs.
//!
//! [`confine`] applies, in this order and each as far as the kernel allows:
//! 1. resource limits (address space, CPU seconds, open files, file size, no core dumps);
//! 2. no capabilities (bounding, ambient, effective, permitted and inheritable sets emptied);
//! 3. `PR_SET_NO_NEW_PRIVS`;
//! 4. Landlock: read-only access beneath [`Policy::read_paths`], execute only the files of
//!    [`Policy::exec_paths`], nothing else of the file system (no writes anywhere); no TCP bind
//!    or connect (ABI 4+); no signals to, nor abstract UNIX sockets of, processes outside the
//!    sandbox (ABI 6+);
//! 5. a seccomp filter (see [`denied_syscalls`]): no sockets, no network calls, no new
//!    processes, no exec (unless [`Policy::allow_exec`]), no tracing or reading of other
//!    processes, signals only to the process itself, and none of the kernel's attack surface
//!    a sandboxed engine never needs (io_uring, bpf, userfaultfd, mount, namespaces, keys, ...).
//!
//! Confinement is irreversible and covers the process and every thread it starts later.
//! Landlock (before ABI 8) restricts only the calling thread and its future children, so call
//! [`confine`] while the process has a single thread; [`Report::threads`] says how many it had.
//!
//! Nothing here fails: a layer the kernel refuses is reported as not held, with the reason,
//! so the caller can warn once and go on.

#![warn(clippy::too_many_lines, clippy::undocumented_unsafe_blocks)]

use std::path::PathBuf;

#[cfg(target_os = "linux")]
mod linux;

#[cfg(target_os = "linux")]
pub use linux::denied_syscalls;

/// What the confined process may still do.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Files and directories (with everything beneath them) the process may read.
    pub read_paths: Vec<PathBuf>,
    /// Files the process may execute (and read). Only useful with [`Policy::allow_exec`].
    pub exec_paths: Vec<PathBuf>,
    /// Let seccomp allow `execve`/`execveat`, for a launcher that confines itself and then
    /// executes the engine host; Landlock still limits execution to [`Policy::exec_paths`].
    pub allow_exec: bool,
    /// Allow `socketpair(AF_UNIX, ...)` (never `socket`, `connect`, `bind` or `accept`).
    pub allow_socketpair: bool,
    /// `RLIMIT_AS`: bytes of virtual address space (`None`: unchanged).
    pub address_space_bytes: Option<u64>,
    /// `RLIMIT_CPU`: CPU seconds for the life of the process (`None`: unchanged).
    pub cpu_seconds: Option<u64>,
    /// `RLIMIT_NOFILE`: the highest file descriptor number plus one (`None`: unchanged).
    pub open_files: Option<u64>,
    /// `RLIMIT_FSIZE`: largest file the process may write (`None`: unchanged).
    pub file_size_bytes: Option<u64>,
    /// Empty every capability set, so a process running as root keeps only the rights of
    /// its user id, which Landlock and seccomp then narrow.
    pub drop_capabilities: bool,
}

impl Default for Policy {
    /// Nothing to read or execute, no exec, no sockets, no writes, at most 64 descriptors,
    /// no core dumps, no capabilities; address space and CPU time unchanged.
    fn default() -> Self {
        Self {
            read_paths: Vec::new(),
            exec_paths: Vec::new(),
            allow_exec: false,
            allow_socketpair: false,
            address_space_bytes: None,
            cpu_seconds: None,
            open_files: Some(64),
            file_size_bytes: Some(0),
            drop_capabilities: true,
        }
    }
}

/// How far Landlock holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LandlockState {
    /// Every requested restriction is enforced.
    Full,
    /// Some are (an older kernel: e.g. no network rules before ABI 4, no signal scoping
    /// before ABI 6).
    Partial,
    /// None: the kernel has no Landlock, it is disabled, or the call failed.
    None,
}

impl LandlockState {
    /// `"full"`, `"partial"` or `"none"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Partial => "partial",
            Self::None => "none",
        }
    }
}

/// Which layers hold after [`confine`]; a layer that does not says why in [`Report::problems`].
#[derive(Clone, Debug)]
pub struct Report {
    /// `PR_SET_NO_NEW_PRIVS` is set.
    pub no_new_privs: bool,
    /// How far Landlock is enforced.
    pub landlock: LandlockState,
    /// The kernel's Landlock ABI version (0: none).
    pub landlock_abi: i32,
    /// The seccomp filter is installed.
    pub seccomp: bool,
    /// Every requested resource limit is set.
    pub rlimits: bool,
    /// The capability sets are empty (or were not asked to be emptied).
    pub capabilities_dropped: bool,
    /// Threads of the process when it was confined (Landlock covers only the calling one and
    /// the threads it starts later).
    pub threads: usize,
    /// One line per layer that does not hold, or holds only in part, with the reason.
    pub problems: Vec<String>,
}

impl Report {
    /// Every layer holds in full.
    pub fn complete(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Confine the current process by `policy` (see the crate documentation). Irreversible.
/// Outside Linux nothing is applied and the report says so.
pub fn confine(policy: &Policy) -> Report {
    #[cfg(target_os = "linux")]
    return linux::confine(policy);
    #[cfg(not(target_os = "linux"))]
    {
        let _ = policy;
        Report {
            no_new_privs: false,
            landlock: LandlockState::None,
            landlock_abi: 0,
            seccomp: false,
            rlimits: false,
            capabilities_dropped: false,
            threads: 0,
            problems: vec![format!(
                "{}: no OS confinement (Linux only)",
                std::env::consts::OS
            )],
        }
    }
}
