//! Confinement is irreversible and process-wide, so each case runs in a fresh child process
//! (this test binary started again with `CONFINE_CASE` set) that confines itself and probes.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::Command;

use confine::{confine, LandlockState, Policy};

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

struct Probe {
    failures: Vec<String>,
}

impl Probe {
    fn check(&mut self, what: &str, ok: bool) {
        if !ok {
            self.failures.push(what.to_string());
        }
    }

    /// `result` is an `Err` with one of `errnos`.
    fn denied<T>(&mut self, what: &str, result: Result<T, i32>, errnos: &[i32]) {
        match result {
            Ok(_) => self.failures.push(format!("{what}: allowed")),
            Err(e) if errnos.contains(&e) => {}
            Err(e) => self.failures.push(format!("{what}: unexpected errno {e}")),
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, i32> {
    std::fs::read(path).map_err(|e| e.raw_os_error().unwrap_or(0))
}

fn write(path: &Path) -> Result<(), i32> {
    std::fs::write(path, b"x").map_err(|e| e.raw_os_error().unwrap_or(0))
}

fn syscall_result(rc: libc::c_long) -> Result<libc::c_long, i32> {
    if rc < 0 {
        Err(errno())
    } else {
        Ok(rc)
    }
}

fn exec(path: &str) -> Result<(), i32> {
    let prog = CString::new(path).unwrap();
    let argv = [prog.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null()];
    // SAFETY: valid NUL-terminated arrays; only returns on failure.
    unsafe { libc::execve(prog.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    Err(errno())
}

fn case_default(dir: &Path) -> Vec<String> {
    let allowed = dir.join("allowed");
    let secret = dir.join("secret.txt");
    let mut p = Probe {
        failures: Vec::new(),
    };
    let policy = Policy {
        read_paths: vec![allowed.clone()],
        ..Policy::default()
    };
    let report = confine(&policy);
    p.check(
        &format!("complete report: {:?}", report.problems),
        report.complete(),
    );
    p.check("landlock full", report.landlock == LandlockState::Full);
    p.check("seccomp on", report.seccomp);
    p.check("no_new_privs", report.no_new_privs);

    p.check("read allowed", read(&allowed.join("code.txt")).is_ok());
    p.denied(
        "read /etc/passwd",
        read(Path::new("/etc/passwd")),
        &[libc::EACCES],
    );
    p.denied("read a sibling file", read(&secret), &[libc::EACCES]);
    p.denied(
        "write in allowed dir",
        write(&allowed.join("new")),
        &[libc::EACCES],
    );
    p.denied("write a file", write(&dir.join("new")), &[libc::EACCES]);

    probe_system_calls(&mut p);
    p.check(
        "threads still start",
        std::thread::spawn(|| 7).join().ok() == Some(7),
    );
    p.denied("exec /bin/sh", exec("/bin/sh"), &[libc::EPERM]);
    p.failures
}

/// The system calls the seccomp filter refuses (network, new processes, other processes).
fn probe_system_calls(p: &mut Probe) {
    // SAFETY: system calls whose arguments are integers, null pointers (clone3 fails on
    // them) or `fds`, a live array of the two ints socketpair writes; a fork that succeeded
    // (a failure of the test) would only leave a child running the same checks.
    unsafe {
        p.denied(
            "socket(AF_INET)",
            syscall_result(libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0).into()),
            &[libc::EPERM],
        );
        p.denied(
            "socket(AF_UNIX)",
            syscall_result(libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0).into()),
            &[libc::EPERM],
        );
        let mut fds = [0; 2];
        p.denied(
            "socketpair",
            syscall_result(
                libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()).into(),
            ),
            &[libc::EPERM],
        );
        p.denied("fork", syscall_result(libc::fork().into()), &[libc::EPERM]);
        p.denied(
            "kill(parent)",
            syscall_result(libc::kill(libc::getppid(), 0).into()),
            &[libc::EPERM],
        );
        p.denied(
            "kill(1)",
            syscall_result(libc::kill(1, 0).into()),
            &[libc::EPERM],
        );
        p.denied(
            "kill(process group)",
            syscall_result(libc::kill(0, 0).into()),
            &[libc::EPERM],
        );
        p.check("kill(self, 0)", libc::kill(libc::getpid(), 0) == 0);
        p.denied(
            "ptrace(attach parent)",
            syscall_result(libc::ptrace(libc::PTRACE_ATTACH, libc::getppid(), 0, 0)),
            &[libc::EPERM],
        );
        p.denied(
            "clone3",
            syscall_result(libc::syscall(libc::SYS_clone3, 0usize, 0usize)),
            &[libc::ENOSYS],
        );
    }
}

/// The ELF interpreter of `/bin/true`, read from its `PT_INTERP` (e.g. `/lib64/ld-linux-x86-64.so.2`).
fn loader() -> PathBuf {
    let elf = std::fs::read("/bin/true").unwrap();
    let at = elf
        .windows(4)
        .position(|w| w == b"/lib")
        .expect("a dynamic executable");
    let end = at + elf[at..].iter().position(|&b| b == 0).unwrap();
    PathBuf::from(std::str::from_utf8(&elf[at..end]).unwrap())
}

fn case_exec(dir: &Path) -> Vec<String> {
    let mut p = Probe {
        failures: Vec::new(),
    };
    let _ = dir;
    let policy = Policy {
        read_paths: [
            "/lib",
            "/lib64",
            "/usr/lib",
            "/usr/lib64",
            "/etc/ld.so.cache",
        ]
        .iter()
        .map(PathBuf::from)
        .collect(),
        // The kernel opens a dynamic executable's loader for execution too.
        exec_paths: vec![PathBuf::from("/bin/true"), loader()],
        allow_exec: true,
        ..Policy::default()
    };
    let report = confine(&policy);
    p.check(
        &format!("complete report: {:?}", report.problems),
        report.complete(),
    );
    p.denied("exec /bin/sh", exec("/bin/sh"), &[libc::EACCES]);
    if p.failures.is_empty() {
        // Replaces this process: /bin/true exits 0, which the parent takes as success.
        let e = exec("/bin/true");
        p.failures.push(format!("exec /bin/true failed: {e:?}"));
    }
    p.failures
}

fn main() {
    if let Ok(case) = std::env::var("CONFINE_CASE") {
        let dir = PathBuf::from(std::env::var("CONFINE_DIR").unwrap());
        let failures = match case.as_str() {
            "default" => case_default(&dir),
            "exec" => case_exec(&dir),
            other => vec![format!("unknown case {other}")],
        };
        for f in &failures {
            eprintln!("    {f}");
        }
        std::process::exit(i32::from(!failures.is_empty()));
    }
    let dir = std::env::temp_dir().join(format!("confine-test-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("allowed")).unwrap();
    std::fs::write(dir.join("allowed/code.txt"), b"code").unwrap();
    std::fs::write(dir.join("secret.txt"), b"secret").unwrap();
    let mut failed = 0;
    let cases = ["default", "exec"];
    for case in cases {
        let status = Command::new(std::env::current_exe().unwrap())
            .env("CONFINE_CASE", case)
            .env("CONFINE_DIR", &dir)
            .status()
            .unwrap();
        let ok = status.success();
        println!("test {case} ... {}", if ok { "ok" } else { "FAILED" });
        failed += usize::from(!ok);
    }
    std::fs::remove_dir_all(&dir).ok();
    println!(
        "\ntest result: {}. {} passed; {failed} failed",
        if failed == 0 { "ok" } else { "FAILED" },
        cases.len() - failed
    );
    std::process::exit(i32::from(failed > 0));
}
