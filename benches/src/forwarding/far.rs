//! Both ends of the application traffic: the far service behind the forward, and the local
//! application that connects to the forward's listening port.
//!
//! The far service runs on threads of the benchmark process, so it costs one read or one
//! write per buffer and nothing else: no interpreter, no data generation. Every connection
//! starts with a small header from the local side, which says what the far side does:
//!
//! - **sink**: read a given number of bytes and throw them away; the moment the last byte
//!   arrives is the end of the transfer (measured at the receiver, in this process);
//! - **source**: on a go byte, write a given number of bytes; the local side, now the
//!   receiver, notes when the last one arrives;
//! - **echo**: write back whatever arrives, until the end of the stream; it checks that a
//!   forward delivers every byte unchanged before it is timed.
//!
//! The far side answers the header with one ready byte, so the local side knows the
//! channel is open end to end. Every stream of a transfer waits for its ready byte, then
//! all start together: setting channels up is not part of the time.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::Direction;

/// How long a stream may make no progress before its transfer is called stalled.
pub const STALL: Duration = Duration::from_secs(60);

/// One read or write of application data.
const BUFFER: usize = 128 * 1024;

/// The header: mode, token, byte count (both little-endian).
const HEADER: usize = 1 + 8 + 8;

const SINK: u8 = b's';
const SOURCE: u8 = b'o';
const ECHO: u8 = b'e';
/// Far to local: the header arrived, so the channel is open end to end.
const READY: u8 = b'r';
/// Local to far: start sending (source mode).
const GO: u8 = b'g';
/// Far to local: every byte arrived (sink mode).
const DONE: u8 = b'd';

/// The far service, listening on a loopback port until the process ends.
#[derive(Debug)]
pub struct Far {
    port: u16,
    /// When the last byte of each sink stream arrived, by the token in its header.
    finished: Arc<Mutex<HashMap<u64, Instant>>>,
    next_token: AtomicU64,
}

impl Far {
    /// Binds a loopback port and serves every connection on its own thread.
    pub fn start() -> io::Result<Far> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = listener.local_addr()?.port();
        let finished = Arc::new(Mutex::new(HashMap::new()));
        let shared = Arc::clone(&finished);
        thread::spawn(move || {
            let payload: Arc<[u8]> = pseudo_random(BUFFER).into();
            for stream in listener.incoming().flatten() {
                let (finished, payload) = (Arc::clone(&shared), Arc::clone(&payload));
                // A failed stream shows up at the local side, which reports it.
                thread::spawn(move || drop(serve(stream, &finished, &payload)));
            }
        });
        Ok(Far {
            port,
            finished,
            next_token: AtomicU64::new(1),
        })
    }

    /// The port a forward's far end connects to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Checks that the forward on `local_port` carries a few MiB there and back unchanged.
    pub fn check(&self, local_port: u16) -> Result<(), String> {
        const BYTES: usize = 4 * 1024 * 1024;
        let mut sent = vec![0u8; BYTES];
        XorShift(0x9e37_79b9_7f4a_7c15).fill(&mut sent);
        let (mut stream, _) = self
            .open(local_port, ECHO, 0)
            .map_err(|e| format!("check: {e}"))?;
        let mut writer = stream
            .try_clone()
            .map_err(|e| format!("check: clone: {e}"))?;
        let mut back = Vec::with_capacity(BYTES);
        thread::scope(|scope| {
            let sender = scope.spawn(|| {
                writer.write_all(&sent)?;
                writer.shutdown(Shutdown::Write)
            });
            let read = stream.read_to_end(&mut back);
            let written = sender.join().map_err(|_| "check: the sender panicked")?;
            written.map_err(|e| format!("check: write: {e}"))?;
            read.map_err(|e| format!("check: read after {} bytes: {e}", back.len()))
        })?;
        if back == sent {
            Ok(())
        } else {
            Err(format!(
                "check: {} bytes came back, not the {BYTES} sent unchanged",
                back.len()
            ))
        }
    }

    /// Moves `bytes` through each of `streams` connections to the forward on `local_port`
    /// at once, in `direction`, and returns the time from the common start to the moment
    /// the receiver had the last byte of the slowest stream.
    pub fn transfer(
        &self,
        local_port: u16,
        direction: Direction,
        streams: usize,
        bytes: u64,
    ) -> Result<Duration, String> {
        let mode = match direction {
            Direction::ClientToServer => SINK,
            Direction::ServerToClient => SOURCE,
        };
        let barrier = Barrier::new(streams + 1);
        thread::scope(|scope| {
            let workers: Vec<_> = (0..streams)
                .map(|_| {
                    let barrier = &barrier;
                    scope.spawn(move || {
                        let opened = self.open(local_port, mode, bytes);
                        // Every stream reaches the barrier, opened or not, so that no
                        // other stream waits for it forever.
                        barrier.wait();
                        let (stream, token) = opened?;
                        match direction {
                            Direction::ClientToServer => self.send(stream, token, bytes),
                            Direction::ServerToClient => receive(stream, bytes),
                        }
                    })
                })
                .collect();
            barrier.wait();
            let start = Instant::now();
            let mut last = start;
            let mut first_error = None;
            for worker in workers {
                match worker.join() {
                    Ok(Ok(end)) => last = last.max(end),
                    Ok(Err(e)) => first_error = first_error.or(Some(e)),
                    Err(_) => first_error = first_error.or(Some("a stream panicked".into())),
                }
            }
            match first_error {
                Some(e) => Err(e),
                None => Ok(last - start),
            }
        })
    }

    /// Connects to the forward, sends the header and waits for the far side's ready byte.
    /// Returns the stream with its token.
    fn open(&self, local_port: u16, mode: u8, bytes: u64) -> Result<(TcpStream, u64), String> {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, local_port))
            .map_err(|e| format!("connect to the forward: {e}"))?;
        stream
            .set_read_timeout(Some(STALL))
            .and_then(|()| stream.set_write_timeout(Some(STALL)))
            .map_err(|e| format!("socket timeouts: {e}"))?;
        let mut header = [0u8; HEADER];
        header[0] = mode;
        header[1..9].copy_from_slice(&token.to_le_bytes());
        header[9..].copy_from_slice(&bytes.to_le_bytes());
        stream
            .write_all(&header)
            .map_err(|e| format!("write the header: {e}"))?;
        let mut ready = [0u8];
        stream
            .read_exact(&mut ready)
            .map_err(|e| format!("no answer through the forward: {e}"))?;
        if ready[0] != READY {
            return Err(format!("the far side answered {:?}", ready[0]));
        }
        Ok((stream, token))
    }

    /// Writes `bytes` into the forward; returns when the far side read the last of them.
    fn send(&self, mut stream: TcpStream, token: u64, bytes: u64) -> Result<Instant, String> {
        let payload = pseudo_random(BUFFER);
        let mut left = bytes;
        while left > 0 {
            let n = left.min(BUFFER as u64) as usize;
            stream
                .write_all(&payload[..n])
                .map_err(|e| format!("write after {} bytes: {e}", bytes - left))?;
            left -= n as u64;
        }
        let mut done = [0u8];
        stream
            .read_exact(&mut done)
            .map_err(|e| format!("the far side never read everything: {e}"))?;
        let finished = self
            .finished
            .lock()
            .map_err(|_| "the far side's lock is poisoned")?
            .remove(&token);
        match (done[0], finished) {
            (DONE, Some(at)) => Ok(at),
            _ => Err("the far side did not note when it finished".to_owned()),
        }
    }
}

/// Sends the go byte and reads `bytes`; returns when the last of them arrived.
fn receive(mut stream: TcpStream, bytes: u64) -> Result<Instant, String> {
    stream
        .write_all(&[GO])
        .map_err(|e| format!("write the go byte: {e}"))?;
    let mut buf = vec![0u8; BUFFER];
    let mut got = 0u64;
    while got < bytes {
        match stream.read(&mut buf) {
            Ok(0) => return Err(format!("the stream ended after {got} of {bytes} bytes")),
            Ok(n) => got += n as u64,
            Err(e) => return Err(format!("read after {got} of {bytes} bytes: {e}")),
        }
    }
    Ok(Instant::now())
}

/// One far-side connection.
fn serve(
    mut stream: TcpStream,
    finished: &Mutex<HashMap<u64, Instant>>,
    payload: &[u8],
) -> io::Result<()> {
    stream.set_read_timeout(Some(STALL))?;
    stream.set_write_timeout(Some(STALL))?;
    let mut header = [0u8; HEADER];
    // Probes that only check the port is open close without a header.
    stream.read_exact(&mut header)?;
    let mut word = [0u8; 8];
    word.copy_from_slice(&header[1..9]);
    let token = u64::from_le_bytes(word);
    word.copy_from_slice(&header[9..]);
    let bytes = u64::from_le_bytes(word);
    stream.write_all(&[READY])?;

    let mut buf = vec![0u8; BUFFER];
    match header[0] {
        SINK => {
            let mut left = bytes;
            while left > 0 {
                let want = left.min(BUFFER as u64) as usize;
                match stream.read(&mut buf[..want])? {
                    0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                    n => left -= n as u64,
                }
            }
            let at = Instant::now();
            finished
                .lock()
                .map_err(|_| io::Error::other("poisoned"))?
                .insert(token, at);
            stream.write_all(&[DONE])
        }
        SOURCE => {
            stream.read_exact(&mut buf[..1])?;
            let mut left = bytes;
            while left > 0 {
                let n = left.min(payload.len() as u64) as usize;
                stream.write_all(&payload[..n])?;
                left -= n as u64;
            }
            stream.shutdown(Shutdown::Write)
        }
        ECHO => {
            loop {
                match stream.read(&mut buf)? {
                    0 => break,
                    n => stream.write_all(&buf[..n])?,
                }
            }
            stream.shutdown(Shutdown::Write)
        }
        other => Err(io::Error::other(format!("unknown mode {other}"))),
    }
}

/// Bytes that no compression could shrink (none is on, but a row should not depend on it).
fn pseudo_random(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    XorShift(0x2545_f491_4f6c_dd1d).fill(&mut bytes);
    bytes
}

/// A small generator: the same seed gives the same stream, 8 bytes at a time.
#[derive(Debug, Clone)]
struct XorShift(u64);

impl XorShift {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            chunk.copy_from_slice(&self.0.to_le_bytes()[..chunk.len()]);
        }
    }
}
