//! The service binaries as operators run them: a real child process on an OS-chosen port, found through its JSON
//! log, probed with its own `healthcheck` subcommand, stopped with a signal.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use crate::PATIENCE;

/// The workspace binary `name` (`classifier`, `registry`), built beside the running test executable: cargo puts
/// test executables in `target/<profile>/deps/` and binaries in `target/<profile>/`. A test crate cannot ask
/// cargo to build another package's binary, but `cargo nextest run --workspace` and `cargo test --workspace`
/// build them all.
pub fn workspace_binary(name: &str) -> PathBuf {
    let test_executable = std::env::current_exe().expect("the test executable's path");
    let profile_dir = test_executable
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test executable runs from target/<profile>/deps/");
    let binary = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.is_file(),
        "the `{name}` binary is missing at {}: build it first (`cargo build --bin {name}`), or run the tests with \
         `cargo nextest run --workspace` / `cargo test --workspace`, which build it",
        binary.display()
    );
    binary
}

/// A service binary running as a child process; killed when dropped, so a failed test leaves nothing behind.
pub struct ServiceProcess {
    binary: PathBuf,
    child: Child,
    /// The URL it serves, read from its `serving` log event.
    pub url: String,
}

impl ServiceProcess {
    /// Starts the workspace binary `name` on `127.0.0.1:0` with JSON logs and `args`, and waits until it logs
    /// that it is serving. Its log goes to the test's stderr only with TEST_LOG.
    pub fn start(name: &str, args: &[&str]) -> Self {
        let binary = workspace_binary(name);
        let mut child = Command::new(&binary)
            .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(args)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("the {name} binary starts: {error}"));
        let stderr = child.stderr.take().expect("piped stderr");
        let (found, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if std::env::var_os("TEST_LOG").is_some() {
                    eprintln!("{line}");
                }
                let _ = found.send(line);
            }
        });
        let deadline = Instant::now() + PATIENCE;
        while let Ok(line) = lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            let event: serde_json::Value = serde_json::from_str(&line).expect("logs are JSON lines");
            if event["message"] == "serving" {
                let addr = event["local_addr"].as_str().expect("the serving event names the address");
                return Self { binary, child, url: format!("http://{addr}") };
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the {name} did not log that it was serving within {} s", PATIENCE.as_secs());
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Runs the binary's `healthcheck` subcommand against this process's URL: true if it exits 0 (SERVING).
    pub fn healthcheck(&self) -> bool {
        Command::new(&self.binary)
            .args(["healthcheck", "--url", &self.url, "--timeout-seconds", "2"])
            .stderr(Stdio::null())
            .status()
            .expect("the healthcheck subcommand runs")
            .success()
    }

    /// Sends SIGTERM, as a container runtime or systemd does to stop a service.
    pub fn terminate(&self) {
        let sent = Command::new("kill").args(["-TERM", &self.id().to_string()]).status().expect("kill runs");
        assert!(sent.success(), "SIGTERM sent to {}", self.id());
    }

    /// SIGKILL, and the exit reaped: a crash with no chance to clean up.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap the killed process");
    }

    /// The exit status once the process has exited, or None if it still runs after `within`.
    pub fn wait_for_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
