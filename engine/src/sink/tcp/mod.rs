//! TCP sink (`--sink tcp://HOST:PORT[?framing=octet]`): feeds collectors such as Vector,
//! Fluent Bit or syslog-ng. Non-blocking (mio), driven by the flush thread like every sink.
//!
//! - Framing: `newline` (default; events are already `\n`-terminated, so a batch is written as
//!   is) or `octet` (RFC 6587 octet counting: `LEN SP MSG` per event, no newline).
//! - Backpressure: when the socket would block, the sink reports how many events it took; the
//!   flush thread keeps the rest and waits in `poll` for the socket to become writable.
//! - Reconnect: on a connection error the unsent remainder of the current write is kept and
//!   the sink reconnects with full-jitter backoff (`spate_core::backoff`: a wait below 100 ms
//!   doubling to 5 s). Events
//!   are counted delivered once the kernel accepted them (as every TCP log shipper does).

use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

pub mod config;

pub use config::{Framing, TcpConfig};

use spate_core::backoff::Backoff;
use spate_core::clock::Clock;

use crate::batch::Batch;
use crate::error::EngineError;
use crate::sink::{Outcomes, Sink};

const SOCK: Token = Token(0);
/// A connect that has not completed by then is abandoned and retried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The TCP sink: a non-blocking connection to a collector, reconnected on errors.
pub struct TcpSink {
    addr: String,
    framing: Framing,
    poll: Poll,
    events: Events,
    conn: Option<TcpStream>,
    connected: bool,
    /// Bytes accepted by `write` but not yet fully written: (buffer, written so far).
    pending: Vec<u8>,
    pending_pos: usize,
    /// Events in `pending` (delivered when it drains).
    pending_events: u64,
    frame: Vec<u8>,
    /// The run's clock (ns): reconnect times, the connect timeout, the drain deadline.
    clock: Arc<dyn Clock>,
    next_attempt: u64,
    connect_started: u64,
    backoff: Backoff,
    reconnects: u64,
}

impl TcpSink {
    /// Resolves `addr` (an error if it does not) and starts connecting; a refused connection is
    /// retried.
    pub fn open(addr: &str, framing: Framing, clock: Arc<dyn Clock>) -> Result<Self, EngineError> {
        let poll = Poll::new()
            .map_err(|source| EngineError::SinkOpen { target: format!("tcp://{addr}"), source })?;
        let mut s = Self {
            addr: addr.to_string(),
            framing,
            poll,
            events: Events::with_capacity(8),
            conn: None,
            connected: false,
            pending: Vec::new(),
            pending_pos: 0,
            pending_events: 0,
            frame: Vec::new(),
            next_attempt: clock.now_ns(),
            connect_started: clock.now_ns(),
            clock,
            backoff: Backoff::reconnects(Duration::from_millis(100), Duration::from_secs(5), addr),
            reconnects: 0,
        };
        // Fail fast on an address that does not resolve; a refused connection is retried.
        s.resolve()?;
        s.connect();
        Ok(s)
    }

    fn resolve(&self) -> Result<SocketAddr, EngineError> {
        self.addr.to_socket_addrs().ok().and_then(|mut a| a.next()).ok_or_else(|| {
            EngineError::SinkOpen {
                target: format!("tcp://{}", self.addr),
                source: std::io::Error::new(ErrorKind::NotFound, "address does not resolve"),
            }
        })
    }

    fn connect(&mut self) {
        if self.clock.now_ns() < self.next_attempt {
            return;
        }
        let Ok(addr) = self.resolve() else { return self.fail_connect() };
        self.connect_started = self.clock.now_ns();
        match TcpStream::connect(addr) {
            Ok(mut c) => {
                if self.poll.registry().register(&mut c, SOCK, Interest::WRITABLE).is_err() {
                    return self.fail_connect();
                }
                let _ = c.set_nodelay(true);
                self.conn = Some(c);
                self.connected = false; // until the first writable event confirms it
            }
            Err(_) => self.fail_connect(),
        }
    }

    fn fail_connect(&mut self) {
        if let Some(mut c) = self.conn.take() {
            let _ = self.poll.registry().deregister(&mut c);
        }
        self.connected = false;
        self.reconnects += 1;
        self.next_attempt = self.clock.now_ns() + self.backoff.failed().as_nanos() as u64;
        spate_core::rate_log::warn(
            "tcp_connect",
            &format!("tcp sink: cannot reach {}; retrying with backoff", self.addr),
        );
    }

    /// Writes as much of `pending` as the socket takes. Returns true when it is empty.
    fn drain(&mut self, acct: &mut Outcomes) -> bool {
        while self.pending_pos < self.pending.len() {
            let Some(c) = self.conn.as_mut() else {
                self.connect();
                return false;
            };
            let res = c.write(&self.pending[self.pending_pos..]);
            // While a non-blocking connect is in progress a write fails with NotConnected;
            // a connect that failed shows as a socket error, or never completes.
            let socket_error = matches!(c.take_error(), Ok(Some(_)) | Err(_));
            let connect_timed_out = !self.connected
                && self.clock.now_ns().saturating_sub(self.connect_started)
                    > CONNECT_TIMEOUT.as_nanos() as u64;
            match res {
                Ok(0) => {
                    self.fail_connect();
                    return false;
                }
                Ok(n) => {
                    self.pending_pos += n;
                    self.connected = true;
                    self.backoff.succeeded();
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e)
                    if e.kind() == ErrorKind::NotConnected
                        && !socket_error
                        && !connect_timed_out =>
                {
                    return false
                }
                Err(_) => {
                    self.fail_connect();
                    return false;
                }
            }
        }
        acct.delivered += self.pending_events;
        acct.delivered_bytes += self.pending.len() as u64;
        self.pending.clear();
        self.pending_pos = 0;
        self.pending_events = 0;
        true
    }
}

impl Sink for TcpSink {
    fn write(
        &mut self,
        batch: &Batch,
        from: usize,
        acct: &mut Outcomes,
    ) -> Result<usize, EngineError> {
        // One batch in the socket at a time: take a new one only when the last has drained.
        if !self.drain(acct) {
            return Ok(0);
        }
        match self.framing {
            Framing::Newline => self.pending.extend_from_slice(batch.bytes_from(from)),
            Framing::Octet => {
                self.frame.clear();
                for i in from..batch.len() {
                    let p = batch.payload(i);
                    let mut b = itoa::Buffer::new();
                    self.frame.extend_from_slice(b.format(p.len()).as_bytes());
                    self.frame.push(b' ');
                    self.frame.extend_from_slice(p);
                }
                std::mem::swap(&mut self.pending, &mut self.frame);
            }
        }
        self.pending_events = (batch.len() - from) as u64;
        // The events' bytes are in `pending` now: the batch can go back to its worker.
        acct.taken(batch, from, batch.len() - from, None);
        self.drain(acct);
        Ok(batch.len() - from)
    }

    fn poll(&mut self, acct: &mut Outcomes, timeout_ms: u64) {
        if self.pending.is_empty() {
            return;
        }
        if self.conn.is_none() {
            self.connect();
        }
        let _ = self.poll.poll(&mut self.events, Some(Duration::from_millis(timeout_ms)));
        self.drain(acct);
    }

    fn finish(&mut self, acct: &mut Outcomes, timeout_ms: u64) -> Result<(), EngineError> {
        let deadline = self.clock.now_ns().saturating_add(timeout_ms.saturating_mul(1_000_000));
        while !self.drain(acct) && self.clock.now_ns() < deadline && !acct.is_aborting() {
            let _ = self.poll.poll(&mut self.events, Some(Duration::from_millis(10)));
        }
        if !self.pending.is_empty() {
            // Time is up: what the socket did not take is failed (TCP has no dead-letter queue).
            let n = self.pending_events;
            acct.failed += n;
            self.pending.clear();
            self.pending_pos = 0;
            self.pending_events = 0;
            return Err(EngineError::SinkWrite {
                target: format!("tcp://{}", self.addr),
                source: std::io::Error::new(
                    ErrorKind::TimedOut,
                    format!("{n} events not written before the drain timeout"),
                ),
            });
        }
        if let Some(c) = self.conn.as_mut() {
            let _ = c.flush();
        }
        Ok(())
    }

    fn in_flight(&self) -> u64 {
        self.pending_events
    }
}
