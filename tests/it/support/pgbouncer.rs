//! A PgBouncer of the test's own (Debian's `pgbouncer`, 1.18) on a free loopback port, in front
//! of the test PostgreSQL; its config is `tests/pgbouncer/pgbouncer.ini`. Killed on drop.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::pg_admin_url;

const TEMPLATE: &str = include_str!("../../pgbouncer/pgbouncer.ini");

/// `pool_mode` of the started PgBouncer.
#[derive(Debug, Clone, Copy)]
pub enum PoolMode {
    Transaction,
    Session,
}

pub struct PgBouncer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

/// `(host, port)` of a `postgres://user@host:port/db` URL.
fn authority(url: &str) -> (&str, &str) {
    let rest = url.split_once('@').map_or(url, |(_, r)| r);
    let host_port = rest.split('/').next().unwrap_or(rest);
    host_port.rsplit_once(':').unwrap_or((host_port, "5432"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

impl PgBouncer {
    pub fn start(mode: PoolMode) -> Self {
        let admin = pg_admin_url();
        let (pg_host, pg_port) = authority(&admin);
        let dir = tempfile::tempdir().expect("tempdir");
        let auth_file = dir.path().join("users.txt");
        std::fs::write(&auth_file, "\"postgres\" \"\"\n\"root\" \"\"\n").expect("auth file");
        let port = free_port();
        let config = TEMPLATE
            .replace("@PG_HOST@", pg_host)
            .replace("@PG_PORT@", pg_port)
            .replace("@PORT@", &port.to_string())
            .replace("@AUTH_FILE@", &auth_file.display().to_string())
            .replace(
                "@POOL_MODE@",
                match mode {
                    PoolMode::Transaction => "transaction",
                    PoolMode::Session => "session",
                },
            );
        let ini = dir.path().join("pgbouncer.ini");
        std::fs::write(&ini, config).expect("pgbouncer.ini");
        let log = std::fs::File::create(dir.path().join("pgbouncer.log")).expect("log file");
        let mut cmd = Command::new("pgbouncer");
        // PgBouncer refuses to run as root; it drops to this user after reading its files.
        if is_root() {
            use std::os::unix::fs::PermissionsExt as _;
            for path in [dir.path(), &ini, &auth_file] {
                let mode = if path.is_dir() { 0o755 } else { 0o644 };
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                    .expect("chmod");
            }
            cmd.args(["-u", "postgres"]);
        }
        let child = cmd
            .arg(&ini)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("pgbouncer (apt-get install pgbouncer) must be installed");
        let bouncer = Self { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "pgbouncer did not listen on {port}: {}",
                bouncer.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        bouncer
    }

    /// `direct` (a URL on the test PostgreSQL) as a URL through this PgBouncer.
    pub fn url(&self, direct: &str) -> String {
        let (host, port) = authority(direct);
        direct.replacen(
            &format!("{host}:{port}"),
            &format!("127.0.0.1:{}", self.port),
            1,
        )
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pgbouncer.log")).unwrap_or_default()
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            == Some("0")
    })
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
