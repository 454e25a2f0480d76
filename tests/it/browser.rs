//! The example frontend (`examples/web`) in headless Chromium, against the real service: the
//! app on one loopback origin (`http://localhost:W`, its Vite dev server), the service on
//! another (`http://localhost:A`), an untrusted page on a third site (`http://127.0.0.1:U`).
//! The scenarios are `examples/web/e2e/run.mjs` (playwright-core driving Debian's `chromium`,
//! which `.ci/run` installs), run twice: as fast as loopback answers, then with every request to
//! the service held 150 ms. Screenshots land in `target/browser/screenshots/` (and
//! `screenshots-slow-network/`). SQLite only: the ceremonies run on both databases in
//! `passkeys.rs`, two-factor and passwordless sign-in in `two_factor.rs` and `passwordless.rs`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::oidc::free_port;
use crate::support::{Backend, SmtpSink, TestApp};

const WEB_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/web");

/// The Chromium to drive: `APEXKIT_CHROMIUM`, else Debian's.
fn chromium() -> String {
    let path = std::env::var("APEXKIT_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&path).exists(),
        "Chromium not found at {path}: `apt-get install chromium` (as .ci/run does) or set APEXKIT_CHROMIUM"
    );
    path
}

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Writes each recipient's mailed links to `dir/<address>.txt` and the text of their mail to
/// `dir/<address>.mail.txt`, for the browser script to open the links and type the codes.
fn bridge_mail(sink: SmtpSink, dir: PathBuf) {
    tokio::spawn(async move {
        loop {
            for mail in sink.all() {
                for to in &mail.to {
                    let received = sink.for_address(to);
                    let links = received
                        .iter()
                        .flat_map(|m| m.links())
                        .collect::<Vec<_>>()
                        .join("\n");
                    let _ = std::fs::write(dir.join(format!("{to}.txt")), links);
                    let texts = received
                        .iter()
                        .map(|m| format!("Subject: {}\n\n{}", m.subject, m.text))
                        .collect::<Vec<_>>()
                        .join("\n\n");
                    let _ = std::fs::write(dir.join(format!("{to}.mail.txt")), texts);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_frontend_in_chromium() {
    let chromium = chromium();
    // The newest of the example's packages: a checkout whose node_modules predates it reinstalls.
    crate::support::npm_ci("examples/web", "jsqr");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser");
    let mail_dir = out.join("mail");
    let shots = out.join("screenshots");
    let _ = std::fs::remove_dir_all(&mail_dir);
    std::fs::create_dir_all(&mail_dir).expect("mail dir");

    let sink = SmtpSink::start();
    let (api_port, web_port) = (free_port(), free_port());
    let api = format!("http://localhost:{api_port}");
    let web = format!("http://localhost:{web_port}");
    let (base, trusted) = (api.clone(), web.clone());
    let _app = TestApp::builder(Backend::Sqlite)
        .smtp(&sink)
        .config(move |c| {
            c.server.listen = format!("127.0.0.1:{api_port}").parse().expect("addr");
            c.server.base_url = Some(base);
            c.server.trusted_origins = vec![trusted];
        })
        .spawn()
        .await;
    bridge_mail(sink, mail_dir.clone());

    let vite = Command::new("node")
        // On localhost, as the service: passkeys need a domain name, not 127.0.0.1.
        .args([
            "node_modules/vite/bin/vite.js",
            "--host",
            "localhost",
            "--strictPort",
            "--port",
        ])
        .arg(web_port.to_string())
        .current_dir(WEB_DIR)
        .env("VITE_APEXKIT_URL", &api)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("vite dev server starts");
    let _vite = Killed(vite);
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let mut up = false;
    for _ in 0..150 {
        if client
            .get(&web)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the example's dev server did not come up on {web}");

    // Twice: as fast as loopback answers, then with every request to the service held 150 ms,
    // as on a slow network. The second pass turns a scenario that acts on a page before the app
    // has drawn it (a race CI once lost) into a failure every time.
    for (pass, slow_api_ms, shots) in [
        ("loopback", 0, shots.clone()),
        ("slow network", 150, out.join("screenshots-slow-network")),
    ] {
        let stdout = run_scenarios(&web, &api, &mail_dir, &shots, &chromium, slow_api_ms).await;
        assert!(
            stdout.contains("10 passed, 0 failed"),
            "{pass} pass:\n{stdout}"
        );
    }
}

/// Runs `e2e/run.mjs` and returns what it printed; panics if it fails or hangs.
async fn run_scenarios(
    web: &str,
    api: &str,
    mail_dir: &Path,
    shots: &Path,
    chromium: &str,
    slow_api_ms: u64,
) -> String {
    // Only this run's screenshots (a failed scenario adds `failed-*.png`).
    let _ = std::fs::remove_dir_all(shots);
    std::fs::create_dir_all(shots).expect("screenshot dir");
    let mut command = Command::new("node");
    command
        .arg("e2e/run.mjs")
        .current_dir(WEB_DIR)
        .env("WEB_URL", web)
        .env("API_URL", api)
        .env("MAIL_DIR", mail_dir)
        .env("SHOTS_DIR", shots)
        .env("CHROMIUM", chromium)
        .env("SLOW_API_MS", slow_api_ms.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let run = tokio::task::spawn_blocking(move || {
        let mut child = command.spawn().expect("node runs e2e/run.mjs");
        let mut stdout = String::new();
        let mut stderr = String::new();
        child
            .stdout
            .take()
            .map(|mut s| s.read_to_string(&mut stdout));
        child
            .stderr
            .take()
            .map(|mut s| s.read_to_string(&mut stderr));
        (child.wait().expect("wait"), stdout, stderr)
    });
    let (status, stdout, stderr) = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("browser tests finish within 5 minutes")
        .expect("join");
    println!("{stdout}");
    assert!(
        status.success(),
        "browser scenarios failed (SLOW_API_MS={slow_api_ms}):\n{stdout}\n{stderr}"
    );
    stdout
}
