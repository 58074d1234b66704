//! The Linux implementation of [`crate::confine`].

use std::collections::BTreeMap;

use landlock::{
    path_beneath_rules, Access, AccessFs, AccessNet, CompatLevel, Compatible, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};

use crate::{LandlockState, Policy, Report};

pub(crate) fn confine(policy: &Policy) -> Report {
    let mut problems = Vec::new();
    let threads = count_threads();
    if threads > 1 {
        problems.push(format!(
            "landlock: {threads} threads were running; only the calling one is restricted"
        ));
    }
    let rlimits = set_rlimits(policy, &mut problems);
    let capabilities_dropped = !policy.drop_capabilities || drop_capabilities(&mut problems);
    let no_new_privs = set_no_new_privs(&mut problems);
    let (landlock, landlock_abi) = apply_landlock(policy, &mut problems);
    let seccomp = no_new_privs && apply_seccomp(policy, &mut problems);
    Report {
        no_new_privs,
        landlock,
        landlock_abi,
        seccomp,
        rlimits,
        capabilities_dropped,
        threads,
        problems,
    }
}

fn count_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(1)
}

fn errno_text() -> String {
    std::io::Error::last_os_error().to_string()
}

// -- rlimits ---------------------------------------------------------------------------------

fn set_rlimits(policy: &Policy, problems: &mut Vec<String>) -> bool {
    let limits = [
        ("address space", libc::RLIMIT_AS, policy.address_space_bytes),
        ("cpu", libc::RLIMIT_CPU, policy.cpu_seconds),
        ("open files", libc::RLIMIT_NOFILE, policy.open_files),
        ("file size", libc::RLIMIT_FSIZE, policy.file_size_bytes),
        ("core", libc::RLIMIT_CORE, Some(0)),
    ];
    let mut all = true;
    for (name, resource, value) in limits {
        let Some(value) = value else { continue };
        if let Err(e) = lower_rlimit(resource, value) {
            problems.push(format!("rlimit {name}: {e}"));
            all = false;
        }
    }
    all
}

/// ioctl requests as the filter compares them (an unsigned long in glibc, an int in musl).
#[allow(clippy::unnecessary_cast)]
const TIOCSTI: u64 = libc::TIOCSTI as u64;
#[allow(clippy::unnecessary_cast)]
const TIOCLINUX: u64 = libc::TIOCLINUX as u64;

/// The type of `getrlimit`'s resource argument: its own type in glibc, an `int` in musl.
#[cfg(target_env = "gnu")]
type RlimitResource = libc::__rlimit_resource_t;
#[cfg(not(target_env = "gnu"))]
type RlimitResource = libc::c_int;

/// Lower both the soft and the hard limit to `value` (never raise them).
fn lower_rlimit(resource: RlimitResource, value: u64) -> Result<(), String> {
    let mut current = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(resource, &mut current) } != 0 {
        return Err(errno_text());
    }
    let value = value.min(current.rlim_max);
    let new = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: plain system call on a struct we own.
    if unsafe { libc::setrlimit(resource, &new) } != 0 {
        return Err(errno_text());
    }
    Ok(())
}

// -- capabilities and no_new_privs -----------------------------------------------------------

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

fn drop_capabilities(problems: &mut Vec<String>) -> bool {
    // The bounding set first: dropping from it needs CAP_SETPCAP, which goes with the rest.
    for cap in 0..64 {
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap, 0, 0, 0) } < 0 {
            break; // past the last capability this kernel knows
        }
        // SAFETY: as above. Fails with EPERM without CAP_SETPCAP: then it was never ours.
        unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) };
    }
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    };
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: capset reads the header and two data structs we own (version 3 layout).
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    if rc != 0 {
        problems.push(format!("capabilities: {}", errno_text()));
        return false;
    }
    true
}

fn set_no_new_privs(problems: &mut Vec<String>) -> bool {
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        problems.push(format!("no_new_privs: {}", errno_text()));
        return false;
    }
    true
}

// -- Landlock --------------------------------------------------------------------------------

/// The newest Landlock ABI this policy was written and tested for; newer kernels enforce
/// exactly these rights, older ones what they know (reported as partial).
const LANDLOCK_ABI: ABI = ABI::V7;

fn landlock_abi() -> i32 {
    // SAFETY: landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION) only returns
    // the ABI version (or an error).
    let version = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            1u32,
        )
    };
    version.max(0) as i32
}

fn apply_landlock(policy: &Policy, problems: &mut Vec<String>) -> (LandlockState, i32) {
    let abi = landlock_abi();
    if abi == 0 {
        problems.push(format!(
            "landlock: not available on this kernel ({})",
            errno_text()
        ));
        return (LandlockState::None, 0);
    }
    match build_landlock(policy) {
        Ok(RulesetStatus::FullyEnforced) => (LandlockState::Full, abi),
        Ok(RulesetStatus::PartiallyEnforced) => {
            problems.push(format!(
                "landlock: partially enforced (kernel ABI {abi}; this policy is written for ABI {})",
                LANDLOCK_ABI as i32
            ));
            (LandlockState::Partial, abi)
        }
        Ok(RulesetStatus::NotEnforced) => {
            problems.push("landlock: not enforced by this kernel".to_string());
            (LandlockState::None, abi)
        }
        Err(e) => {
            problems.push(format!("landlock: {e}"));
            (LandlockState::None, abi)
        }
    }
}

fn build_landlock(policy: &Policy) -> Result<RulesetStatus, landlock::RulesetError> {
    let abi = LANDLOCK_ABI;
    let read = AccessFs::ReadFile | AccessFs::ReadDir;
    let exec = AccessFs::ReadFile | AccessFs::Execute;
    let status = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(abi))?
        .handle_access(AccessNet::from_all(abi))?
        .scope(Scope::from_all(abi))?
        .create()?
        .add_rules(path_beneath_rules(&policy.read_paths, read))?
        .add_rules(path_beneath_rules(&policy.exec_paths, exec))?
        .restrict_self()?;
    Ok(status.ruleset)
}

// -- seccomp ---------------------------------------------------------------------------------

/// Why each system call is denied: the calls the filter refuses with `EPERM` (some only for
/// some arguments, see [`confine`]'s filter). `clone3` is refused with `ENOSYS` so that the C
/// library falls back to `clone`, whose flags the filter can read.
pub fn denied_syscalls(policy: &Policy) -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = deny_rules(policy, std::process::id())
        .into_iter()
        .map(|(name, _, why, _)| (name, why))
        .collect();
    out.push(("clone3", "ENOSYS: the C library falls back to clone"));
    out
}

type Rule = (&'static str, i64, &'static str, Vec<SeccompRule>);

fn cond(arg: u8, len: SeccompCmpArgLen, op: SeccompCmpOp, value: u64) -> SeccompRule {
    SeccompRule::new(vec![
        SeccompCondition::new(arg, len, op, value).expect("argument index below 6")
    ])
    .expect("one condition")
}

/// Other processes' memory, state and descriptors.
const OTHER_PROCESSES: &[(&str, i64)] = &[
    ("ptrace", libc::SYS_ptrace),
    ("process_vm_readv", libc::SYS_process_vm_readv),
    ("process_vm_writev", libc::SYS_process_vm_writev),
    ("process_madvise", libc::SYS_process_madvise),
    ("kcmp", libc::SYS_kcmp),
    ("pidfd_open", libc::SYS_pidfd_open),
    ("pidfd_getfd", libc::SYS_pidfd_getfd),
    ("pidfd_send_signal", libc::SYS_pidfd_send_signal),
    ("tkill", libc::SYS_tkill),
];

/// Kernel attack surface an engine host never needs.
const KERNEL_SURFACE: &[(&str, i64)] = &[
    ("io_uring_setup", libc::SYS_io_uring_setup),
    ("io_uring_enter", libc::SYS_io_uring_enter),
    ("io_uring_register", libc::SYS_io_uring_register),
    ("bpf", libc::SYS_bpf),
    ("perf_event_open", libc::SYS_perf_event_open),
    ("userfaultfd", libc::SYS_userfaultfd),
    ("keyctl", libc::SYS_keyctl),
    ("add_key", libc::SYS_add_key),
    ("request_key", libc::SYS_request_key),
    ("unshare", libc::SYS_unshare),
    ("setns", libc::SYS_setns),
    ("mount", libc::SYS_mount),
    ("umount2", libc::SYS_umount2),
    ("pivot_root", libc::SYS_pivot_root),
    ("chroot", libc::SYS_chroot),
    ("open_tree", libc::SYS_open_tree),
    ("move_mount", libc::SYS_move_mount),
    ("fsopen", libc::SYS_fsopen),
    ("fsconfig", libc::SYS_fsconfig),
    ("fsmount", libc::SYS_fsmount),
    ("fspick", libc::SYS_fspick),
    ("mount_setattr", libc::SYS_mount_setattr),
    ("name_to_handle_at", libc::SYS_name_to_handle_at),
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
    ("init_module", libc::SYS_init_module),
    ("finit_module", libc::SYS_finit_module),
    ("delete_module", libc::SYS_delete_module),
    ("kexec_load", libc::SYS_kexec_load),
    ("kexec_file_load", libc::SYS_kexec_file_load),
    ("reboot", libc::SYS_reboot),
    ("swapon", libc::SYS_swapon),
    ("swapoff", libc::SYS_swapoff),
    ("acct", libc::SYS_acct),
    ("quotactl", libc::SYS_quotactl),
    ("syslog", libc::SYS_syslog),
    ("vhangup", libc::SYS_vhangup),
    ("settimeofday", libc::SYS_settimeofday),
    ("clock_settime", libc::SYS_clock_settime),
    ("clock_adjtime", libc::SYS_clock_adjtime),
    ("adjtimex", libc::SYS_adjtimex),
    ("sethostname", libc::SYS_sethostname),
    ("setdomainname", libc::SYS_setdomainname),
];

/// `(name, number, why, rules)`: the call is denied when any rule matches (all when none).
fn deny_rules(policy: &Policy, pid: u32) -> Vec<Rule> {
    let mut rules = denied_outright(policy);
    rules.extend(denied_by_argument(policy, pid));
    rules
}

/// The calls denied whatever their arguments.
fn denied_outright(policy: &Policy) -> Vec<Rule> {
    let mut rules: Vec<Rule> = Vec::new();
    let mut deny = |name: &'static str, nr: i64, why: &'static str| {
        rules.push((name, nr, why, Vec::new()));
    };
    // Network.
    deny("socket", libc::SYS_socket, "no network");
    deny("connect", libc::SYS_connect, "no network");
    deny("bind", libc::SYS_bind, "no network");
    deny("listen", libc::SYS_listen, "no network");
    deny("accept", libc::SYS_accept, "no network");
    deny("accept4", libc::SYS_accept4, "no network");
    // Processes.
    #[cfg(target_arch = "x86_64")]
    {
        deny("fork", libc::SYS_fork, "no new processes");
        deny("vfork", libc::SYS_vfork, "no new processes");
    }
    if !policy.allow_exec {
        deny("execve", libc::SYS_execve, "no exec");
        deny("execveat", libc::SYS_execveat, "no exec");
    }
    for &(name, nr) in OTHER_PROCESSES {
        deny(name, nr, "no access to other processes");
    }
    for &(name, nr) in KERNEL_SURFACE {
        deny(name, nr, "kernel surface a sandbox does not need");
    }
    #[cfg(target_arch = "x86_64")]
    for (name, nr) in [
        ("iopl", libc::SYS_iopl),
        ("ioperm", libc::SYS_ioperm),
        ("uselib", libc::SYS_uselib),
    ] {
        deny(name, nr, "kernel surface a sandbox does not need");
    }
    rules
}

/// The calls denied for some arguments only.
fn denied_by_argument(policy: &Policy, pid: u32) -> Vec<Rule> {
    use SeccompCmpArgLen::{Dword, Qword};
    use SeccompCmpOp::{Eq, MaskedEq, Ne};
    let pid = u64::from(pid);
    let mut rules: Vec<Rule> = Vec::new();
    let socketpair = if policy.allow_socketpair {
        vec![cond(0, Dword, Ne, libc::AF_UNIX as u64)]
    } else {
        Vec::new()
    };
    rules.push((
        "socketpair",
        libc::SYS_socketpair,
        "only AF_UNIX pairs, when allowed",
        socketpair,
    ));
    rules.push((
        "clone",
        libc::SYS_clone,
        "threads only (CLONE_THREAD), no new processes",
        vec![cond(0, Qword, MaskedEq(libc::CLONE_THREAD as u64), 0)],
    ));
    for (name, nr) in [
        ("kill", libc::SYS_kill),
        ("tgkill", libc::SYS_tgkill),
        ("rt_sigqueueinfo", libc::SYS_rt_sigqueueinfo),
        ("rt_tgsigqueueinfo", libc::SYS_rt_tgsigqueueinfo),
    ] {
        // The first argument is the target process: anything but this process is denied.
        let rule = cond(0, Dword, Ne, pid);
        rules.push((name, nr, "signals only to the process itself", vec![rule]));
    }
    rules.push((
        "ioctl",
        libc::SYS_ioctl,
        "no terminal input injection",
        vec![cond(1, Dword, Eq, TIOCSTI), cond(1, Dword, Eq, TIOCLINUX)],
    ));
    rules
}

/// The x32 system call bit: on x86-64 the same calls can be made with it set (x32 ABI, same
/// audit architecture), so the filter denies those numbers too when the kernel has x32.
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: i64 = 0x4000_0000;

#[cfg(target_arch = "x86_64")]
fn kernel_has_x32() -> bool {
    // SAFETY: getpid through the x32 entry point: ENOSYS when the kernel has no x32.
    let rc = unsafe { libc::syscall(X32_SYSCALL_BIT | libc::SYS_getpid) };
    rc >= 0
}

fn apply_seccomp(policy: &Policy, problems: &mut Vec<String>) -> bool {
    match build_seccomp(policy) {
        Ok(filters) => {
            for filter in filters {
                if let Err(e) = seccompiler::apply_filter_all_threads(&filter) {
                    problems.push(format!("seccomp: {e}"));
                    return false;
                }
            }
            true
        }
        Err(e) => {
            problems.push(format!("seccomp: {e}"));
            false
        }
    }
}

fn build_seccomp(policy: &Policy) -> Result<Vec<BpfProgram>, seccompiler::BackendError> {
    let arch = std::env::consts::ARCH.try_into()?;
    let mut map: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (_, nr, _, rules) in deny_rules(policy, std::process::id()) {
        #[cfg(target_arch = "x86_64")]
        if kernel_has_x32() {
            map.insert(nr | X32_SYSCALL_BIT, rules.clone());
        }
        map.insert(nr, rules);
    }
    // x32's own variants of calls whose arguments differ (512..=547): none is needed.
    #[cfg(target_arch = "x86_64")]
    if kernel_has_x32() {
        for nr in 512..=547 {
            map.insert(nr | X32_SYSCALL_BIT, Vec::new());
        }
    }
    let deny = SeccompFilter::new(
        map,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )?;
    let clone3 = SeccompFilter::new(
        [(libc::SYS_clone3, Vec::new())].into_iter().collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )?;
    Ok(vec![deny.try_into()?, clone3.try_into()?])
}
