//! `codemode._core.confine`: OS confinement of the current process (crate `confine`).

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Confine this process (irreversible); returns which layers hold (see `_core.pyi`).
#[pyfunction]
#[pyo3(signature = (read_paths, exec_paths=Vec::new(), *, allow_exec=false, allow_socketpair=false,
                    address_space_bytes=None, cpu_seconds=None, open_files=Some(64),
                    file_size_bytes=Some(0), drop_capabilities=true))]
#[allow(clippy::too_many_arguments)]
fn confine<'py>(
    py: Python<'py>,
    read_paths: Vec<PathBuf>,
    exec_paths: Vec<PathBuf>,
    allow_exec: bool,
    allow_socketpair: bool,
    address_space_bytes: Option<u64>,
    cpu_seconds: Option<u64>,
    open_files: Option<u64>,
    file_size_bytes: Option<u64>,
    drop_capabilities: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let policy = ::confine::Policy {
        read_paths,
        exec_paths,
        allow_exec,
        allow_socketpair,
        address_space_bytes,
        cpu_seconds,
        open_files,
        file_size_bytes,
        drop_capabilities,
    };
    let report = ::confine::confine(&policy);
    let out = PyDict::new(py);
    out.set_item("no_new_privs", report.no_new_privs)?;
    out.set_item("landlock", report.landlock.as_str())?;
    out.set_item("landlock_abi", report.landlock_abi)?;
    out.set_item("seccomp", report.seccomp)?;
    out.set_item("rlimits", report.rlimits)?;
    out.set_item("capabilities_dropped", report.capabilities_dropped)?;
    out.set_item("threads", report.threads)?;
    out.set_item("problems", report.problems)?;
    Ok(out)
}

/// Add this file's functions to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(self::confine, m)?)
}
