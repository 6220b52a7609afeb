//! The `classifier` binary as operators run it: a real second process, its `healthcheck` subcommand, and a
//! graceful exit on SIGTERM.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

const BINARY: &str = env!("CARGO_BIN_EXE_classifier");

/// Starts the binary on an OS-chosen port and returns it with the URL it serves, read from its log.
fn start_classifier() -> (Child, String) {
    let mut child = Command::new(BINARY)
        .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("the classifier binary starts");
    let stderr = child.stderr.take().unwrap();
    let (found, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if std::env::var_os("TEST_LOG").is_some() {
                eprintln!("{line}");
            }
            let _ = found.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Ok(line) = lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        let event: serde_json::Value = serde_json::from_str(&line).expect("logs are JSON lines");
        if event["message"] == "serving" {
            let addr = event["local_addr"].as_str().expect("the serving event names the address");
            return (child, format!("http://{addr}"));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the classifier did not log that it was serving within 30 s");
}

fn healthcheck(url: &str) -> bool {
    Command::new(BINARY)
        .args(["healthcheck", "--url", url, "--timeout-seconds", "2"])
        .stderr(Stdio::null())
        .status()
        .expect("the healthcheck subcommand runs")
        .success()
}

fn wait_for_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn healthcheck_passes_while_serving_and_sigterm_stops_the_server_cleanly() {
    let (mut child, url) = start_classifier();
    assert!(healthcheck(&url), "healthcheck exits 0 while the server is SERVING");

    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let status = wait_for_exit(&mut child, Duration::from_secs(15));
    if status.is_none() {
        let _ = child.kill();
    }
    assert_eq!(status.map(|s| s.code()), Some(Some(0)), "SIGTERM ends the server with exit status 0");
    assert!(!healthcheck(&url), "healthcheck fails once nothing serves");
}

#[test]
fn a_bad_policy_file_stops_the_start_with_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("classifier-policy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("policy.toml");
    let text = include_str!("../../policy/policies/default.toml")
        .replace("class1_min_score = 120.0", "class1_min_score = 10.0");
    std::fs::write(&path, text).unwrap();

    let output = Command::new(BINARY)
        .args(["--listen", "127.0.0.1:0", "--policy-file"])
        .arg(&path)
        .output()
        .expect("the classifier binary runs");

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("score_thresholds"), "the error names the field: {stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
