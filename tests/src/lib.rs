//! Shared helpers for the integration tests: a real `keel serve` process on a free port with
//! its own data directory, which tests stop politely (SIGTERM) or brutally (kill -9).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `keel` binary under test: `$KEEL_BIN`, or the workspace's target dir (built by
/// `.ci/run` before the tests; built here on demand otherwise).
pub fn keel_bin() -> PathBuf {
    if let Ok(p) = std::env::var("KEEL_BIN") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .to_path_buf();
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let bin = target.join("debug").join("keel");
    static BUILD: std::sync::Once = std::sync::Once::new();
    BUILD.call_once(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "keel-server", "--bin", "keel"])
            .current_dir(&root)
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building keel failed");
    });
    bin
}

/// How README installs the Python clients the tests drive: a virtual environment at the
/// workspace root (Debian's own Python refuses `pip install` outside one, PEP 668).
pub const PYTHON_INSTALL: &str =
    "python3 -m venv .venv && .venv/bin/pip install -r tests/python/requirements.txt";

/// The Python the tests run: `$KEEL_PYTHON`, else the workspace's `.venv` (README's and
/// `.ci/run`'s), else `python3` from PATH.
pub fn python() -> String {
    if let Ok(p) = std::env::var("KEEL_PYTHON") {
        return p;
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python3");
    if venv.exists() {
        return venv.display().to_string();
    }
    "python3".into()
}

/// `None` when [`python`] imports every one of `modules`, else what is missing.
pub fn missing_python_modules(modules: &[&str]) -> Option<String> {
    let imports = format!("import {}", modules.join(", "));
    match Command::new(python()).args(["-c", &imports]).output() {
        Err(e) => Some(format!("{} ({e})", python())),
        Ok(out) if out.status.success() => None,
        Ok(out) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let last = stderr.lines().last().unwrap_or_default().to_string();
            Some(format!("Python modules {modules:?} ({last})"))
        }
    }
}

/// Runs `tests/python/<script>` with `--bootstrap <keel>` and `args`; asserts it exits 0,
/// showing its output and the broker's log otherwise, and prints its stdout.
pub fn run_python_script(keel: &Keel, script: &str, args: &[&str], timeout: Duration) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(script);
    let out = run_with_timeout(
        Command::new(python())
            .arg(path)
            .args(["--bootstrap", &keel.bootstrap()])
            .args(args)
            .env("PYTHONUNBUFFERED", "1"),
        b"",
        timeout,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} {args:?} exited {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- keel log\n{}",
        out.status,
        keel.log()
    );
    print!("{stdout}");
}

/// A fresh, empty data directory under the system temp dir.
pub fn temp_data_dir(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("keel-test-{name}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running `keel serve`.
pub struct Keel {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    extra_args: Vec<String>,
    /// RLIMIT_NOFILE (soft and hard) to start it under, if any.
    nofile: Option<u64>,
}

impl Keel {
    /// Starts a broker on a free port over `data_dir` and waits until it accepts connections.
    pub fn start(data_dir: &Path, extra_args: &[&str]) -> Keel {
        Keel::start_with_nofile(data_dir, extra_args, None)
    }

    /// [`Keel::start`] under `ulimit -n nofile` (soft and hard, so the broker cannot raise
    /// its way out), kept across restarts.
    pub fn start_with_nofile(data_dir: &Path, extra_args: &[&str], nofile: Option<u64>) -> Keel {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let mut keel = Keel {
            child: None,
            addr,
            data_dir: data_dir.to_path_buf(),
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            nofile,
        };
        keel.spawn();
        keel
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.data_dir.with_extension("log")).expect("log file");
        let mut command = match self.nofile {
            None => Command::new(keel_bin()),
            Some(n) => {
                let mut sh = Command::new("sh");
                sh.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(keel_bin());
                sh
            }
        };
        let child = command
            .arg("serve")
            .arg("--listen")
            .arg(self.addr.to_string())
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.extra_args)
            .env(
                "RUST_LOG",
                std::env::var("KEEL_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("keel starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_err() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("keel exited early with {status}; log: {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "keel did not start listening; log: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The broker process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// The broker's log output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.with_extension("log")).unwrap_or_default()
    }

    /// SIGTERM, then wait for exit; returns whether it exited 0.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// kill -9: no flush, no goodbye.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same address and data directory.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop or kill the broker first");
        self.spawn();
    }
}

impl Drop for Keel {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Whether CI is running us (`.ci/run` runs with `CI=true`): there a missing test
/// prerequisite is a failure, never a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// Gate for a test that needs an external tool (kcat, a Python client). When `missing` is
/// `Some(what)`, in CI this panics saying exactly what to install; elsewhere it prints a loud
/// `SKIPPED` line (straight to stderr, so the test harness does not swallow it) and returns
/// false so that the caller returns early. Returns true when nothing is missing.
pub fn require(test: &str, missing: Option<String>, install: &str) -> bool {
    use std::io::Write;
    let Some(what) = missing else {
        return true;
    };
    assert!(
        !in_ci(),
        "{test}: needs {what}, and CI must not skip it; install with: {install}"
    );
    let _ = writeln!(
        std::io::stderr(),
        "\n**** SKIPPED {test}: needs {what}; install with: {install} (CI fails instead) ****\n"
    );
    false
}

/// Runs `cmd` to completion with `stdin` as its input, capturing stdout and stderr; panics
/// if it has not exited after `timeout` (killing it), or if it cannot be started.
pub fn run_with_timeout(
    cmd: &mut Command,
    stdin: &[u8],
    timeout: Duration,
) -> std::process::Output {
    use std::io::{Read, Write};
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let mut input = child.stdin.take().expect("piped stdin");
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        // A client that exits early closes the pipe: not our failure to report.
        let _ = input.write_all(&stdin);
    });
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stdout = out_reader.join().unwrap_or_default();
            let stderr = err_reader.join().unwrap_or_default();
            panic!(
                "{cmd:?} did not finish within {timeout:?}\n--- stdout\n{}\n--- stderr\n{}",
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = writer.join();
    std::process::Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}
