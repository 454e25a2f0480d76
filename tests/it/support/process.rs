//! The real binary, as operators run it: a clean environment, stderr read line by line.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_apexkit");

/// The binary with a cleared environment, these variables and no stdin; for `output()`, or to
/// start with [`Proc::spawn`].
pub fn apexkit_cmd(envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .envs(envs.iter().copied())
        .stdin(Stdio::null());
    cmd
}

/// A started process with its stderr lines streamed to the test; killed on drop.
pub struct Proc {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    /// The lines read so far.
    pub log: Vec<String>,
}

impl Proc {
    /// Starts the binary with a clean environment and `envs` (see [`apexkit_cmd`]).
    pub fn start(envs: &[(&str, &str)]) -> Self {
        Self::spawn(apexkit_cmd(envs))
    }

    /// Starts `cmd` with stdout discarded and stderr captured (start several before waiting on
    /// any, and they race).
    pub fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn apexkit");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            log: Vec::new(),
        }
    }

    /// Waits (at most `within`) for a new log line containing `needle`; returns it.
    pub fn wait_for_line(&mut self, needle: &str, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(needle) {
                        return Some(line);
                    }
                }
                Err(_) => return None,
            }
        }
        None
    }

    /// The first line of the whole log containing `needle`: one read already, or else one that
    /// arrives within `within`.
    pub fn wait_for_logged(&mut self, needle: &str, within: Duration) -> Option<String> {
        if let Some(line) = self.log.iter().find(|l| l.contains(needle)) {
            return Some(line.clone());
        }
        self.wait_for_line(needle, within)
    }

    /// Waits (at most `within`) for the "listening on http://ADDR" line; returns `ADDR`.
    pub fn wait_listening(&mut self, within: Duration) -> Option<String> {
        let line = self.wait_for_line("listening on http://", within)?;
        let rest = line.split("listening on http://").nth(1)?;
        Some(
            rest.chars()
                .take_while(|c| !c.is_whitespace() && *c != '"' && *c != '\u{1b}')
                .collect(),
        )
    }

    /// [`Self::wait_listening`], with a wildcard host made loopback; panics with the log when
    /// the process exits first or takes longer than `within`.
    pub fn listening(&mut self, within: Duration) -> String {
        match self.wait_listening(within) {
            Some(addr) => addr.replace("0.0.0.0", "127.0.0.1"),
            None => panic!(
                "apexkit did not start listening within {within:?}:\n{}",
                self.log.join("\n")
            ),
        }
    }

    /// The whole log: the lines read so far and any already waiting.
    pub fn log_text(&mut self) -> String {
        while let Ok(line) = self.lines.try_recv() {
            self.log.push(line);
        }
        self.log.join("\n")
    }

    /// Sends SIGTERM, as an orchestrator stopping the service does.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit (killing it after `within`: `None`); returns its status and
    /// whole log.
    pub fn wait_exit(&mut self, within: Duration) -> (Option<ExitStatus>, String) {
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.log.push(line);
        }
        (status, self.log.join("\n"))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Installs the npm packages of a Node fixture of the tests (`dir`, relative to the crate: its
/// lock file) unless `package` is already there, once per test run, so `cargo test` alone works
/// on a fresh checkout; `.ci/run` installs them up front.
pub fn npm_ci(dir: &str, package: &str) {
    static DONE: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if done.iter().any(|d| d == dir) {
        return;
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    if !path.join("node_modules").join(package).exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("npm (Node.js >= 20) is needed for {dir}: {e}"));
        assert!(status.success(), "npm ci --prefix {dir} failed");
    }
    done.push(dir.to_owned());
}
