//! An SMTP sink: a real SMTP server on loopback for the mail tests. `mailin` speaks the
//! protocol, this file accepts connections and keeps what arrives. It can play an outage
//! (refusing every session with 421) and recover, on the same port. Point an app at it with
//! `TestApp::builder(backend).smtp(&sink)`.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apexkit::Config;
use base64::Engine as _;
use mailin::{Action, Handler, Response, SessionBuilder, response};

/// One message as the server received it, decoded.
#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub raw: String,
}

impl Received {
    /// Every link in the plain-text part.
    pub fn links(&self) -> Vec<String> {
        self.text
            .split_whitespace()
            .filter(|w| w.starts_with("http://") || w.starts_with("https://"))
            .map(str::to_owned)
            .collect()
    }

    /// The only link (panics when there is not exactly one).
    pub fn link(&self) -> String {
        let links = self.links();
        assert_eq!(links.len(), 1, "one link expected in {}", self.text);
        links[0].clone()
    }

    /// The `token` query parameter of the link.
    pub fn token(&self) -> String {
        let link = url::Url::parse(&self.link()).expect("link is a URL");
        link.query_pairs()
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
            .expect("link carries a token")
    }
}

type Inbox = Arc<Mutex<Vec<Received>>>;

#[derive(Clone)]
struct Collector {
    inbox: Inbox,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for Collector {
    fn mail(&mut self, _ip: std::net::IpAddr, _domain: &str, from: &str) -> Response {
        self.from = from.to_owned();
        self.to.clear();
        self.data.clear();
        response::OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        self.to.push(to.to_owned());
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let raw = String::from_utf8_lossy(&self.data).into_owned();
        let (subject, text, html) = decode(&raw);
        self.inbox.lock().unwrap().push(Received {
            from: self.from.clone(),
            to: self.to.clone(),
            subject,
            text,
            html,
            raw,
        });
        response::OK
    }
}

pub struct SmtpSink {
    pub addr: SocketAddr,
    inbox: Inbox,
    stopped: Arc<AtomicBool>,
    /// While set, every connection gets `421` and is closed, as from a server in maintenance.
    down: Arc<AtomicBool>,
}

impl SmtpSink {
    /// Listens on a free loopback port.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind SMTP port");
        let addr = listener.local_addr().unwrap();
        let inbox: Inbox = Arc::default();
        let stopped = Arc::new(AtomicBool::new(false));
        let down = Arc::new(AtomicBool::new(false));
        let (inbox2, stopped2, down2) = (inbox.clone(), stopped.clone(), down.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped2.load(Ordering::SeqCst) {
                    break; // drops the listener: the port refuses connections again
                }
                let Ok(mut stream) = stream else { continue };
                if down2.load(Ordering::SeqCst) {
                    let _ = stream.write_all(b"421 4.3.2 Service not available, try later\r\n");
                    continue;
                }
                let collector = Collector {
                    inbox: inbox2.clone(),
                    from: String::new(),
                    to: Vec::new(),
                    data: Vec::new(),
                };
                std::thread::spawn(move || serve(stream, collector));
            }
        });
        Self {
            addr,
            inbox,
            stopped,
            down,
        }
    }

    /// `smtp://` URL of this server.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Plays an outage (`true`: every session is refused with 421) or ends it.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Stops accepting connections.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes the accept loop
    }

    pub fn all(&self) -> Vec<Received> {
        self.inbox.lock().unwrap().clone()
    }

    /// Messages received for `to`.
    pub fn for_address(&self, to: &str) -> Vec<Received> {
        self.all()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t == to))
            .collect()
    }

    /// Waits (up to 15 s) until `to` has received `n` messages, and returns them.
    pub async fn wait_for(&self, to: &str, n: usize) -> Vec<Received> {
        for _ in 0..300 {
            let got = self.for_address(to);
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{to} expected {n} message(s), got {:?}",
            self.for_address(to)
                .iter()
                .map(|m| &m.subject)
                .collect::<Vec<_>>()
        );
    }

    /// The latest message for `to` whose subject is `subject`, waiting for it to arrive.
    pub async fn latest(&self, to: &str, subject: &str) -> Received {
        for _ in 0..300 {
            if let Some(m) = self
                .for_address(to)
                .into_iter()
                .rev()
                .find(|m| m.subject == subject)
            {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no {subject:?} message for {to}");
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve(stream: TcpStream, collector: Collector) {
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let peer = stream.peer_addr().map(|a| a.ip()).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut session = SessionBuilder::new("apexkit-test-smtp").build(peer, collector);
    if session.greeting().write_to(&mut writer).is_err() {
        return;
    }
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let res = session.process(&line);
        match res.action {
            Action::Reply => {
                if res.write_to(&mut writer).is_err() {
                    return;
                }
                let _ = writer.flush();
            }
            Action::Close | Action::UpgradeTls => {
                let _ = res.write_to(&mut writer);
                return;
            }
            Action::NoReply => {}
        }
    }
}

/// Subject, plain-text and HTML parts of a MIME message (quoted-printable and base64 decoded).
fn decode(raw: &str) -> (String, String, String) {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    let headers = unfold(head);
    let subject = header(&headers, "subject").unwrap_or_default();
    let content_type = header(&headers, "content-type").unwrap_or_default();
    let mut text = String::new();
    let mut html = String::new();
    let boundary = content_type
        .split(';')
        .filter_map(|p| p.trim().strip_prefix("boundary="))
        .map(|b| b.trim_matches('"').to_owned())
        .next();
    match boundary {
        Some(boundary) => {
            for part in body.split(&format!("--{boundary}")) {
                let Some((phead, pbody)) = part.split_once("\r\n\r\n") else {
                    continue;
                };
                let pheaders = unfold(phead);
                let ptype = header(&pheaders, "content-type").unwrap_or_default();
                let cte = header(&pheaders, "content-transfer-encoding").unwrap_or_default();
                let decoded = decode_body(pbody.trim_end_matches("\r\n"), &cte);
                if ptype.starts_with("text/plain") {
                    text = decoded;
                } else if ptype.starts_with("text/html") {
                    html = decoded;
                }
            }
        }
        None => {
            let cte = header(&headers, "content-transfer-encoding").unwrap_or_default();
            text = decode_body(body, &cte);
        }
    }
    (subject, text, html)
}

fn unfold(head: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            out.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    out
}

fn header(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

fn decode_body(body: &str, cte: &str) -> String {
    match cte.to_ascii_lowercase().as_str() {
        "base64" => {
            let joined: String = body.split_whitespace().collect();
            String::from_utf8_lossy(
                &base64::engine::general_purpose::STANDARD
                    .decode(joined)
                    .expect("base64 part"),
            )
            .into_owned()
        }
        "quoted-printable" => {
            let soft = body.replace("=\r\n", "");
            let bytes = soft.as_bytes();
            let mut out = Vec::with_capacity(bytes.len());
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'='
                    && i + 2 < bytes.len()
                    && let Ok(b) = u8::from_str_radix(&soft[i + 1..i + 3], 16)
                {
                    out.push(b);
                    i += 3;
                    continue;
                }
                out.push(bytes[i]);
                i += 1;
            }
            String::from_utf8_lossy(&out).into_owned()
        }
        _ => body.to_owned(),
    }
}

/// Mail settings for tests: this SMTP URL, a fast outbox, quick retries.
pub(super) fn fast_mail(config: &mut Config, smtp_url: &str) {
    config.mail.smtp_url = Some(apexkit::config::Secret::new(smtp_url));
    config.mail.from = Some("Apexkit Test <auth@example.com>".to_owned());
    config.mail.poll_interval_ms = 50;
    config.mail.retry_base_ms = 100;
    config.mail.retry_max_ms = 400;
    config.mail.limit = 50;
}
