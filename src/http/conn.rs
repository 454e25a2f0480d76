//! Connection hygiene below HTTP (issue 13, item 5): a cap on open connections, a header-read
//! timeout and an idle keep-alive timeout, enforced by an [`Acceptor`] whose IO type watches the
//! bytes going by. poem 3.1 exposes no header-read timeout (its `idle_timeout` is reset by every
//! byte, so a client trickling headers keeps it alive forever), hence this layer.
//!
//! Each accepted connection holds a slot of a semaphore; at the cap the acceptor stops accepting
//! until a slot frees, so new connections wait in the kernel's backlog and are served as soon as
//! a slow or idle connection is cut (rather than being accepted and closed at once, which would
//! refuse well-behaved clients for as long as the slow ones hold the slots).
//!
//! The phases of an HTTP/1 connection, as seen from its bytes:
//! - `Head`: from the accept (first request) or from the first byte of a later request, until
//!   the empty line ending the headers; over `header_read` the connection is closed.
//! - `Busy`: a request is being read and answered; no deadline (a slow resolver is not cut).
//! - `Idle`: the answer has been written (an interim `1xx` does not count); the next request's
//!   first byte must come within `keep_alive`, else the connection ends as if the peer had closed
//!   it. Writes refresh the deadline, so a client that stops reading its answer is cut too.
//!
//! A connection opening with the HTTP/2 preface is not parsed: it is cut after `keep_alive`
//! without any read or write. Limitation: HTTP/1 pipelining (a request sent before the previous
//! answer) is only covered by the timeouts of the connection's first request.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use poem::http::uri::Scheme;
use poem::listener::{Acceptor, TcpAcceptor};
use poem::web::{LocalAddr, RemoteAddr};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again, instead
/// of spinning on the error.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Open file descriptors kept free of client connections (database pool, SQLite files, logs,
/// the metrics listener).
pub const RESERVED_FDS: u64 = 256;

/// The timeouts and the cap of one listener.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub header_read: Duration,
    pub keep_alive: Duration,
    pub max_connections: usize,
}

/// A TCP acceptor that caps open connections and puts deadlines on slow or idle ones.
pub struct GuardedAcceptor {
    inner: TcpAcceptor,
    slots: Arc<Semaphore>,
    limits: ConnLimits,
}

impl GuardedAcceptor {
    pub fn new(listener: tokio::net::TcpListener, limits: ConnLimits) -> io::Result<Self> {
        Ok(Self {
            inner: TcpAcceptor::from_tokio(listener)?,
            slots: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            limits,
        })
    }
}

impl Acceptor for GuardedAcceptor {
    type Io = Guarded<TcpStream>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(&mut self) -> io::Result<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        // Cancel-safe: dropping this future releases the slot and loses no connection.
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| io::Error::other("connection slots closed"))?;
        loop {
            match self.inner.accept().await {
                Ok((io, local, remote, scheme)) => {
                    let _ = io.set_nodelay(true);
                    return Ok((Guarded::new(io, slot, self.limits), local, remote, scheme));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed; pausing before the next");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Head,
    Busy,
    Idle,
    Http2,
}

/// An accepted connection: holds its slot until dropped and enforces the phase deadlines.
pub struct Guarded<T> {
    io: T,
    _slot: OwnedSemaphorePermit,
    limits: ConnLimits,
    phase: Phase,
    /// No byte read yet (the HTTP/2 preface is recognised on the first read).
    fresh: bool,
    /// Header-end scanner: a line feed was the last byte but for carriage returns.
    after_newline: bool,
    /// Header-end scanner: the head has a byte other than CR/LF (leading blank lines don't end it).
    content: bool,
    deadline: Pin<Box<Sleep>>,
    armed: bool,
}

impl<T> Guarded<T> {
    fn new(io: T, slot: OwnedSemaphorePermit, limits: ConnLimits) -> Self {
        Self {
            io,
            _slot: slot,
            limits,
            phase: Phase::Head,
            fresh: true,
            after_newline: false,
            content: false,
            deadline: Box::pin(tokio::time::sleep(limits.header_read)),
            armed: true,
        }
    }

    fn arm(&mut self, after: Duration) {
        self.deadline.as_mut().reset(Instant::now() + after);
        self.armed = true;
    }

    fn start_head(&mut self) {
        self.phase = Phase::Head;
        self.after_newline = false;
        self.content = false;
        self.arm(self.limits.header_read);
    }

    /// Whether the deadline has passed (registering the waker when it has not).
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.armed && self.deadline.as_mut().poll(cx).is_ready()
    }

    fn on_read(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if std::mem::take(&mut self.fresh) && bytes.starts_with(b"PRI ") {
            self.phase = Phase::Http2;
        }
        match self.phase {
            Phase::Http2 => self.arm(self.limits.keep_alive),
            Phase::Busy => {}
            Phase::Idle => {
                self.start_head();
                self.scan(bytes);
            }
            Phase::Head => self.scan(bytes),
        }
    }

    /// Looks for the blank line that ends the head (`\r\n\r\n`, or bare `\n` as httparse allows).
    fn scan(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match b {
                b'\n' if self.after_newline && self.content => {
                    self.phase = Phase::Busy;
                    self.armed = false;
                    return;
                }
                b'\n' => self.after_newline = true,
                b'\r' => {}
                _ => {
                    self.after_newline = false;
                    self.content = true;
                }
            }
        }
    }

    fn on_write(&mut self, first: &[u8], written: usize) {
        if written == 0 {
            return;
        }
        match self.phase {
            // An interim answer (100 Continue) is not the end of the request.
            Phase::Busy if first.starts_with(b"HTTP/1.1 1") => {}
            Phase::Busy | Phase::Idle => {
                self.phase = Phase::Idle;
                self.arm(self.limits.keep_alive);
            }
            Phase::Http2 => self.arm(self.limits.keep_alive),
            Phase::Head => {}
        }
    }

    fn timed_out(&self) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, "connection deadline passed")
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Guarded<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.expired(cx) {
            return Poll::Ready(match this.phase {
                // An idle keep-alive connection ends as if the client had closed it.
                Phase::Idle => Ok(()),
                _ => Err(this.timed_out()),
            });
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.on_read(&buf.filled()[before..]);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Guarded<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        match polled {
            Poll::Ready(Ok(n)) => this.on_write(buf, n),
            Poll::Pending if this.expired(cx) => return Poll::Ready(Err(this.timed_out())),
            _ => {}
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        match polled {
            Poll::Ready(Ok(n)) => {
                let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| b);
                this.on_write(first, n);
            }
            Poll::Pending if this.expired(cx) => return Poll::Ready(Err(this.timed_out())),
            _ => {}
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// Raises the soft open-file limit to the hard limit (many connections need many descriptors);
/// returns the soft limit in force afterwards, `None` where it cannot be read.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn raise_open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read/write the struct passed by pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            tracing::debug!(
                from = limit.rlim_cur,
                to = limit.rlim_max,
                "raised the open-file limit"
            );
            return Some(limit.rlim_max);
        }
        tracing::warn!(
            soft = limit.rlim_cur,
            hard = limit.rlim_max,
            "cannot raise the open-file limit"
        );
    }
    Some(limit.rlim_cur)
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn raise_open_file_limit() -> Option<u64> {
    None
}

/// The connection cap that fits `open_files` (keeping [`RESERVED_FDS`] for everything else).
pub fn fit_cap(configured: usize, open_files: Option<u64>) -> usize {
    match open_files {
        Some(limit) if limit != u64::MAX => {
            let room = usize::try_from(limit.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX);
            configured.min(room.max(1))
        }
        _ => configured,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guarded() -> Guarded<()> {
        let slot = Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap();
        let limits = ConnLimits {
            header_read: Duration::from_secs(1),
            keep_alive: Duration::from_secs(2),
            max_connections: 1,
        };
        Guarded::new((), slot, limits)
    }

    #[tokio::test]
    async fn phases_follow_the_bytes() {
        let mut g = guarded();
        assert_eq!(g.phase, Phase::Head);
        // Leading blank lines do not end the head; a trickled head ends at its blank line.
        g.on_read(b"\r\n\r\n");
        assert_eq!(g.phase, Phase::Head);
        for b in b"GET / HTTP/1.1\r\nHost: x\r\n\r" {
            g.on_read(&[*b]);
            assert_eq!(g.phase, Phase::Head);
        }
        g.on_read(b"\nbody");
        assert_eq!((g.phase, g.armed), (Phase::Busy, false));
        g.on_write(b"HTTP/1.1 100 Continue\r\n\r\n", 25);
        assert_eq!(g.phase, Phase::Busy);
        g.on_write(b"HTTP/1.1 200 OK\r\n", 17);
        assert_eq!((g.phase, g.armed), (Phase::Idle, true));
        g.on_read(b"POST /graphql HTTP/1.1\n\n");
        assert_eq!(g.phase, Phase::Busy);
    }

    #[tokio::test]
    async fn the_http2_preface_is_recognised() {
        let mut g = guarded();
        g.on_read(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        assert_eq!(g.phase, Phase::Http2);
        g.on_write(b"\0\0", 2);
        assert_eq!(g.phase, Phase::Http2);
    }

    #[test]
    fn the_cap_fits_the_file_limit() {
        assert_eq!(fit_cap(10_000, Some(1024)), 768);
        assert_eq!(fit_cap(100, Some(1024)), 100);
        assert_eq!(fit_cap(100, None), 100);
        assert_eq!(fit_cap(100, Some(10)), 1);
    }
}
