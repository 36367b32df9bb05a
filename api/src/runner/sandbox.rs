//! The sandbox a run executes in (bubblewrap), and how a run reaches the API from inside it.
//!
//! With `RUNFLOW_RUNNER_SANDBOX=bwrap` (the default) a run is started as
//!
//! ```text
//! setpriv --reuid U --regid U --clear-groups --no-new-privs      (only when the server is root)
//!   prlimit --cpu --as --nproc --nofile --fsize                  (resource limits, inherited)
//!     bwrap --unshare-all --die-with-parent --new-session ...    (namespaces, mounts)
//!       /.runflow/init sandbox-init --socket ... --listen 127.0.0.1:8080 -- <entrypoint>
//! ```
//!
//! - Mounts: `/usr` (and the `/bin`, `/lib*` links), a few files of `/etc` and the paths of
//!   `RUNFLOW_RUNNER_SANDBOX_BIND`, all read-only; the bundle read-only at `/bundle`; a private
//!   tmpfs of `RUNFLOW_RUN_MAX_TMP_BYTES` at `/tmp`; the root itself read-only. Nothing else
//!   of the host: not the data directory, not other runs' directories, not the server's
//!   `/proc` (own PID namespace, `/proc` shows the run's own tree only).
//! - Network: its own network namespace with only loopback. `sandbox-init` (the runflow binary
//!   itself) listens on 127.0.0.1:8080 inside and forwards every connection to a Unix socket
//!   bound into the sandbox; the worker accepts on that socket and connects to the API
//!   address, and only there. So the run reaches the API and nothing else (no database port,
//!   no other local service, no internet).
//! - Outbound internet (`RUNFLOW_RUNNER_EGRESS=public`): `sandbox-init` also listens on
//!   127.0.0.1:3128 and forwards to a second socket, where the worker runs a `CONNECT`
//!   proxy that reaches public addresses only (see [`super::egress`]); the run gets
//!   `HTTPS_PROXY`/`HTTP_PROXY` (and lower-case forms) pointing at it and `NO_PROXY` for the
//!   API. With `none` (the default) there is no proxy and no such variables.
//! - User: when the server runs as root, each concurrent run gets its own unprivileged user id
//!   (`RUNFLOW_RUNNER_UID_BASE` + n), so `RLIMIT_NPROC` is a per-run process cap.
//! - Lifetime: the child of the worker is the process group of setpriv/prlimit/bwrap;
//!   `--die-with-parent` ties the sandbox's PID 1 to it, and when PID 1 of a PID namespace
//!   dies the kernel kills every process in it. Killing the group therefore ends the whole
//!   tree, grandchildren included.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpStream, UnixListener};

use super::egress::{self, INSIDE_PROXY_ADDRESS};
use crate::config::{Config, Egress, SandboxMode};

/// Where `sandbox-init` listens inside the sandbox (RUNFLOW_API_URL of a sandboxed run).
pub const INSIDE_API_ADDRESS: &str = "127.0.0.1:8080";
const INSIDE_INIT: &str = "/.runflow/init";
const INSIDE_API_DIR: &str = "/.runflow/api";
const INSIDE_BUNDLE: &str = "/bundle";
const SOCKET_NAME: &str = "api.sock";
const PROXY_SOCKET_NAME: &str = "egress.sock";
/// How many uids (from `RUNFLOW_RUNNER_UID_BASE`) runs rotate through.
const UID_RANGE: u32 = 10_000;

/// Files of /etc an interpreter may need (read-only, when present).
const ETC_FILES: &[&str] = &[
    "/etc/alternatives",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/mime.types",
    "/etc/nsswitch.conf",
];

/// How this process isolates runs, decided once at start.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

struct Inner {
    /// None: no isolation (`RUNFLOW_RUNNER_SANDBOX=none`).
    bwrap: Option<Bwrap>,
    /// Why runs are refused (bwrap wanted but unusable).
    refusal: Option<String>,
}

struct Bwrap {
    program: PathBuf,
    init: PathBuf,
    as_root: bool,
    uid_base: u32,
    /// Uids of runs in progress, and where the next search starts (round robin, so a uid is
    /// reused only long after its run, when the kernel has surely reaped its processes).
    uids: Mutex<(BTreeSet<u32>, u32)>,
    binds: Vec<PathBuf>,
    limits: Limits,
    /// host:port of the API (what the forwarder connects to).
    api_target: Result<String, String>,
    egress: Egress,
}

#[derive(Clone, Copy)]
struct Limits {
    cpu_seconds: u64,
    memory_bytes: u64,
    processes: u64,
    open_files: u64,
    tmp_bytes: u64,
}

/// A program to start for one run, and what must live as long as it.
pub struct Prepared {
    pub command: tokio::process::Command,
    /// Held for the run's lifetime: the forwarder tasks, the uid lease, the socket directory.
    pub guard: RunGuard,
}

pub struct RunGuard {
    /// The API forwarder and (with egress) the proxy.
    forwarders: Vec<tokio::task::JoinHandle<()>>,
    uid: Option<(Arc<Inner>, u32)>,
    _socket_dir: Option<tempfile::TempDir>,
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        for task in self.forwarders.drain(..) {
            task.abort();
        }
        if let Some((inner, uid)) = self.uid.take()
            && let Some(bwrap) = &inner.bwrap
            && let Ok(mut uids) = bwrap.uids.lock()
        {
            uids.0.remove(&uid);
        }
    }
}

/// What a run gets: its bundle directory, its environment variables (besides PATH, HOME and
/// RUNFLOW_API_URL, which the sandbox sets) and its entrypoint.
pub struct RunSpec<'a> {
    pub bundle: &'a Path,
    pub entrypoint: &'a [String],
    pub env: Vec<(&'static str, String)>,
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `host:port` of an `http://` URL.
fn http_target(url: &str) -> Result<String, String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        format!("the agent API URL {url:?} is not http://: sandboxed runs reach the API through a plain TCP forwarder; set RUNFLOW_AGENT_API_URL to an http:// address this worker reaches")
    })?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Err(format!("the agent API URL {url:?} has no host"));
    }
    Ok(
        if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            authority.to_string()
        } else {
            format!("{authority}:80")
        },
    )
}

impl Sandbox {
    /// Decides how runs are isolated; logs the decision (and a refusal) once.
    pub fn from_config(config: &Config) -> Sandbox {
        let inner = match config.runner_sandbox {
            SandboxMode::None => {
                tracing::warn!(
                    "runner: RUNFLOW_RUNNER_SANDBOX=none: agent code runs WITHOUT isolation, as the server's OS user; \
                     use this for development only"
                );
                Inner {
                    bwrap: None,
                    refusal: None,
                }
            }
            SandboxMode::Bwrap => match Self::check_bwrap(config) {
                Ok(bwrap) => {
                    tracing::info!(
                        program = %bwrap.program.display(),
                        as_root = bwrap.as_root,
                        egress = ?bwrap.egress,
                        "runner: agent runs are sandboxed with bubblewrap"
                    );
                    Inner {
                        bwrap: Some(bwrap),
                        refusal: None,
                    }
                }
                Err(reason) => {
                    let refusal = format!(
                        "this worker refuses to run agents: {reason}. Install bubblewrap (Debian: apt-get install bubblewrap) \
                         or set RUNFLOW_RUNNER_SANDBOX=none to run agent code without isolation"
                    );
                    tracing::error!("runner: {refusal}");
                    Inner {
                        bwrap: None,
                        refusal: Some(refusal),
                    }
                }
            },
        };
        Sandbox { inner: Arc::new(inner) }
    }

    fn check_bwrap(config: &Config) -> Result<Bwrap, String> {
        let program = which(&config.runner_bwrap)
            .ok_or_else(|| format!("the sandbox program {:?} was not found", config.runner_bwrap))?;
        let init = std::env::current_exe().map_err(|e| format!("cannot locate the runflow binary: {e}"))?;
        let as_root = is_root();
        if as_root {
            for tool in ["setpriv", "prlimit"] {
                which(tool).ok_or_else(|| format!("{tool} (util-linux) was not found"))?;
            }
        } else {
            which("prlimit").ok_or_else(|| "prlimit (util-linux) was not found".to_string())?;
        }
        // bubblewrap present is not enough (user namespaces may be disabled): try it once.
        let probe = std::process::Command::new(&program)
            .args(["--unshare-all", "--die-with-parent"])
            .args(system_mounts())
            .args(["--", "/usr/bin/true"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .output()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        if !probe.status.success() {
            return Err(format!(
                "{} cannot create a sandbox here ({}): {}",
                program.display(),
                probe.status,
                String::from_utf8_lossy(&probe.stderr).trim()
            ));
        }
        for path in &config.runner_sandbox_bind {
            let data = std::fs::canonicalize(&config.data_dir).unwrap_or_else(|_| config.data_dir.clone());
            let bound = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
            if data.starts_with(&bound) || bound.starts_with(&data) {
                return Err(format!(
                    "RUNFLOW_RUNNER_SANDBOX_BIND {} would expose the data directory",
                    path.display()
                ));
            }
        }
        Ok(Bwrap {
            program,
            init,
            as_root,
            uid_base: config.runner_uid_base,
            uids: Mutex::new((BTreeSet::new(), 0)),
            binds: config.runner_sandbox_bind.clone(),
            limits: Limits {
                cpu_seconds: config.run_max_cpu_seconds.max(1),
                memory_bytes: config.run_max_memory_bytes,
                processes: config.run_max_processes.max(4),
                open_files: config.run_max_open_files.max(16),
                tmp_bytes: config.run_max_tmp_bytes.max(4096),
            },
            api_target: http_target(&config.api_url()),
            egress: config.runner_egress,
        })
    }

    /// The reason this worker refuses runs, if it does.
    pub fn refusal(&self) -> Option<&str> {
        self.inner.refusal.as_deref()
    }

    pub fn is_isolated(&self) -> bool {
        self.inner.bwrap.is_some()
    }

    /// Builds the command of one run (not started yet). `api_url` is the URL the worker
    /// reaches the API at.
    pub fn prepare(&self, run: &RunSpec<'_>, api_url: &str) -> Result<Prepared, String> {
        if let Some(refusal) = &self.inner.refusal {
            return Err(refusal.clone());
        }
        let (program, arguments) = run.entrypoint.split_first().ok_or("empty entrypoint")?;
        let Some(bwrap) = &self.inner.bwrap else {
            let mut command = tokio::process::Command::new(program);
            command
                .args(arguments)
                .current_dir(run.bundle)
                .env_clear()
                .env(
                    "PATH",
                    std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
                )
                .env("HOME", run.bundle)
                .env("RUNFLOW_API_URL", api_url);
            for (key, value) in &run.env {
                command.env(key, value);
            }
            command.process_group(0);
            return Ok(Prepared {
                command,
                guard: RunGuard {
                    forwarders: Vec::new(),
                    uid: None,
                    _socket_dir: None,
                },
            });
        };
        let target = bwrap.api_target.clone()?;
        // The socket the run's forwarder connects to, in a directory of its own.
        let socket_dir = tempfile::Builder::new()
            .prefix("runflow-api-")
            .tempdir()
            .map_err(|e| format!("cannot create the run's socket directory: {e}"))?;
        let socket = socket_dir.path().join(SOCKET_NAME);
        let listener = UnixListener::bind(&socket).map_err(|e| format!("cannot bind the run's API socket: {e}"))?;
        set_mode(socket_dir.path(), 0o755)?;
        set_mode(&socket, 0o777)?;
        let mut forwarders = vec![tokio::spawn(forward(listener, target))];
        if bwrap.egress == Egress::Public {
            let proxy_socket = socket_dir.path().join(PROXY_SOCKET_NAME);
            let proxy =
                UnixListener::bind(&proxy_socket).map_err(|e| format!("cannot bind the run's proxy socket: {e}"))?;
            set_mode(&proxy_socket, 0o777)?;
            forwarders.push(tokio::spawn(egress::serve(proxy)));
        }
        let uid = if bwrap.as_root {
            let mut uids = bwrap.uids.lock().map_err(|_| "uid pool poisoned")?;
            let (in_use, next) = &mut *uids;
            let offset = (0..UID_RANGE)
                .map(|i| (*next + i) % UID_RANGE)
                .find(|o| !in_use.contains(&(bwrap.uid_base + o)))
                .ok_or("no free uid for the run")?;
            *next = (offset + 1) % UID_RANGE;
            let uid = bwrap.uid_base + offset;
            in_use.insert(uid);
            Some(uid)
        } else {
            None
        };
        let guard = RunGuard {
            forwarders,
            uid: uid.map(|u| (self.inner.clone(), u)),
            _socket_dir: Some(socket_dir),
        };
        let limits = bwrap.limits;
        let mut command = match uid {
            Some(uid) => {
                let mut command = tokio::process::Command::new("setpriv");
                command.args([
                    format!("--reuid={uid}"),
                    format!("--regid={uid}"),
                    "--clear-groups".into(),
                    "--no-new-privs".into(),
                    "--".into(),
                    "prlimit".into(),
                ]);
                command
            }
            None => tokio::process::Command::new("prlimit"),
        };
        command.arg(format!("--cpu={}", limits.cpu_seconds));
        command.arg(format!("--as={}", limits.memory_bytes));
        command.arg(format!("--nofile={}", limits.open_files));
        command.arg(format!("--fsize={}", limits.tmp_bytes));
        if uid.is_some() {
            // RLIMIT_NPROC counts the processes of the real user id: a per-run cap only with
            // a per-run user id.
            command.arg(format!("--nproc={}", limits.processes));
        }
        command.arg("--").arg(&bwrap.program);
        command.args([
            "--unshare-all",
            "--die-with-parent",
            "--new-session",
            "--clearenv",
            "--hostname",
            "runflow-run",
        ]);
        command.args(system_mounts());
        for file in ETC_FILES {
            command.args(["--ro-bind-try", file, file]);
        }
        for path in &bwrap.binds {
            command.arg("--ro-bind").arg(path).arg(path);
        }
        command.args(["--proc", "/proc", "--dev", "/dev"]);
        command
            .arg("--size")
            .arg(limits.tmp_bytes.to_string())
            .args(["--tmpfs", "/tmp"]);
        command.arg("--ro-bind").arg(run.bundle).arg(INSIDE_BUNDLE);
        command.arg("--ro-bind").arg(guard_dir(&guard)).arg(INSIDE_API_DIR);
        command.arg("--ro-bind").arg(&bwrap.init).arg(INSIDE_INIT);
        command.args(["--remount-ro", "/", "--chdir", INSIDE_BUNDLE]);
        let mut env: Vec<(String, String)> = vec![
            ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
            ("HOME".into(), "/tmp".into()),
            ("TMPDIR".into(), "/tmp".into()),
            ("RUNFLOW_API_URL".into(), format!("http://{INSIDE_API_ADDRESS}")),
        ];
        if bwrap.egress == Egress::Public {
            let proxy = format!("http://{INSIDE_PROXY_ADDRESS}");
            for key in ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"] {
                env.push((key.into(), proxy.clone()));
            }
            for key in ["NO_PROXY", "no_proxy"] {
                env.push((key.into(), "127.0.0.1,localhost".into()));
            }
        }
        env.extend(run.env.iter().map(|(k, v)| ((*k).to_string(), v.clone())));
        for (key, value) in env {
            command.arg("--setenv").arg(key).arg(value);
        }
        command.args([
            "--",
            INSIDE_INIT,
            "sandbox-init",
            "--socket",
            &format!("{INSIDE_API_DIR}/{SOCKET_NAME}"),
            "--listen",
            INSIDE_API_ADDRESS,
        ]);
        if bwrap.egress == Egress::Public {
            command.args([
                "--proxy-socket",
                &format!("{INSIDE_API_DIR}/{PROXY_SOCKET_NAME}"),
                "--proxy-listen",
                INSIDE_PROXY_ADDRESS,
            ]);
        }
        command.arg("--");
        command.arg(program).args(arguments);
        command
            .env_clear()
            .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        command.process_group(0);
        Ok(Prepared { command, guard })
    }
}

/// `/usr` read-only, and `/bin`, `/sbin`, `/lib*` as the host has them (links into `/usr`, or
/// read-only directories).
fn system_mounts() -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = vec!["--ro-bind".into(), "/usr".into(), "/usr".into()];
    for top in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] {
        let path = Path::new(top);
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                if let Ok(target) = std::fs::read_link(path) {
                    args.extend(["--symlink".into(), target.into_os_string(), top.into()]);
                }
            }
            Ok(meta) if meta.is_dir() => args.extend(["--ro-bind".into(), top.into(), top.into()]),
            _ => {}
        }
    }
    args
}

fn guard_dir(guard: &RunGuard) -> PathBuf {
    guard
        ._socket_dir
        .as_ref()
        .map(|d| d.path().to_path_buf())
        .unwrap_or_default()
}

/// Makes the bundle readable by a run's own user id (directories 0755, files 0644).
pub fn open_bundle(root: &Path) -> std::io::Result<()> {
    fn walk(path: &Path) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::symlink_metadata(path)?;
        if meta.is_dir() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
            for entry in std::fs::read_dir(path)? {
                walk(&entry?.path())?;
            }
        } else if meta.is_file() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))?;
        }
        Ok(())
    }
    walk(root)
}

fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot set the mode of {}: {e}", path.display()))
}

fn which(program: &str) -> Option<PathBuf> {
    let path = Path::new(program);
    if program.contains('/') {
        return path.is_file().then(|| path.to_path_buf());
    }
    let search = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&search)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// The worker's side of the API forwarder: every connection to the run's socket is joined to
/// a new connection to the API address (and only there).
async fn forward(listener: UnixListener, target: String) {
    loop {
        let Ok((mut inside, _)) = listener.accept().await else {
            return;
        };
        let target = target.clone();
        tokio::spawn(async move {
            if let Ok(mut api) = TcpStream::connect(&target).await {
                let _ = tokio::io::copy_bidirectional(&mut inside, &mut api).await;
            }
        });
    }
}

/// Kills a run's whole process group (the sandbox and, through it, every process of the run;
/// without a sandbox, every process that stayed in the group).
pub async fn kill_tree(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        let _ = tokio::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .await;
    }
    let _ = child.start_kill();
    let _ = child.wait().await;
}

/// `runflow sandbox-init`: runs inside the sandbox. Forwards 127.0.0.1 connections to the API
/// socket (and, with egress, the proxy's to the proxy socket), runs the entrypoint with this
/// process's stdin/stdout/stderr, and exits with its status (so the sandbox, and every process
/// left in it, ends with it).
pub fn init(socket: &Path, listen: SocketAddr, proxy: Option<(&Path, SocketAddr)>, command: &[String]) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    let Some((program, arguments)) = command.split_first() else {
        eprintln!("runflow sandbox-init: no command");
        return ExitCode::from(2);
    };
    forward_inside(listen, socket, "the API");
    if let Some((socket, listen)) = proxy {
        forward_inside(listen, socket, "the egress proxy");
    }
    match std::process::Command::new(program).args(arguments).status() {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
            (None, Some(signal)) => {
                eprintln!("the entrypoint was killed by signal {signal}");
                ExitCode::from(u8::try_from(128 + signal).unwrap_or(1))
            }
            _ => ExitCode::FAILURE,
        },
        Err(error) => {
            eprintln!("cannot start the entrypoint {program:?}: {error}");
            ExitCode::from(127)
        }
    }
}

/// Inside the sandbox: joins every connection to `listen` to a new connection to `socket`.
fn forward_inside(listen: SocketAddr, socket: &Path, what: &str) {
    use std::os::unix::net::UnixStream;
    match std::net::TcpListener::bind(listen) {
        Ok(listener) => {
            let socket = socket.to_path_buf();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(client) = stream else { continue };
                    let Ok(api) = UnixStream::connect(&socket) else {
                        continue;
                    };
                    let (Ok(mut client_read), Ok(mut api_write)) = (client.try_clone(), api.try_clone()) else {
                        continue;
                    };
                    let (mut client_write, mut api_read) = (client, api);
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut client_read, &mut api_write);
                        let _ = api_write.shutdown(std::net::Shutdown::Write);
                    });
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut api_read, &mut client_write);
                        let _ = client_write.shutdown(std::net::Shutdown::Write);
                    });
                }
            });
        }
        Err(error) => eprintln!("runflow sandbox-init: cannot listen on {listen}: {error} ({what} is unreachable)"),
    }
}

#[cfg(test)]
mod tests {
    use super::http_target;

    #[test]
    fn api_targets_come_from_http_urls_only() {
        assert_eq!(http_target("http://127.0.0.1:8080").unwrap(), "127.0.0.1:8080");
        assert_eq!(http_target("http://api.internal/x").unwrap(), "api.internal:80");
        assert!(http_target("https://api.example.test").unwrap_err().contains("http://"));
    }
}
