//! Fairness between the channels of one connection, through this project's client and
//! server as separate processes: small requests and answers on one channel are not held
//! up behind a bulk transfer on another, here one whose destination reads slowly, so
//! that the server holds a window's worth of it at all times.
//!
//! Round trips while a bulk transfer keeps both processes' CPU busy are not bounded
//! here: then each one waits behind up to a window of bulk data in the connection's one
//! TCP stream, whatever the loop does, and no bound both holds and tells a fair loop
//! from an unfair one.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use interop::forwarding::{
    PATTERN_CHUNK, PERIOD, Serve, echo_service, local_forward, loopback_listener, pattern,
    wait_for_port,
};
use interop::peers::{TempDir, free_port};

/// Round trips of one byte on the small channel.
const ROUND_TRIPS: usize = 200;
/// The slowest 5 % of them may take longer than this, up to [`WORST`]; the rest not.
///
/// A round trip here is six hops between processes on loopback and takes well under a
/// millisecond on an idle machine (a few at worst); a process descheduled on a loaded
/// two-core machine adds tens of milliseconds. One that had to wait behind the bulk
/// channel's backlog, up to its window of at least 2 MiB (the initial window), would wait
/// for the destination to take it at 1 MiB/s: up to two seconds, and nearly every round
/// trip would. The test checks that the bulk transfer really was that slow, at least five
/// times this bound per window.
const P95: Duration = Duration::from_millis(200);
/// The slowest any one may be: room for a rare long pause of a loaded machine (the whole
/// suite runs at once on two cores), still half of what waiting behind a window takes.
const WORST: Duration = Duration::from_secs(1);
/// Half of the round trips must be faster than this: most of them meet no descheduling
/// at all, and it is still fifty times what they take on an idle machine.
const MEDIAN: Duration = Duration::from_millis(50);
/// How fast the bulk transfer's destination reads, at most: a burst of this many bytes
/// every [`PAUSE`], 1 MiB/s. The destination is the slow end, so the bulk channel runs
/// on its window with a backlog in the server the whole time the round trips run.
const BURST: usize = 256 << 10;
const PAUSE: Duration = Duration::from_millis(250);

/// A destination that checks it receives [`pattern`] and reads at most [`BURST`] per
/// [`PAUSE`] until `drain` is set, then as fast as it can. At EOF it reports the bytes it got, or
/// the offset where they stopped matching the pattern; a connection that brings nothing
/// (a probe of the forward's port) reports nothing.
fn paced_sink(
    drain: Arc<AtomicBool>,
) -> (u16, Arc<AtomicU64>, mpsc::Receiver<Result<u64, String>>) {
    let listener = loopback_listener();
    let port = listener.local_addr().expect("sink address").port();
    let received = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&received);
    let (report, reports) = mpsc::channel();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (drain, counter, report) =
                (Arc::clone(&drain), Arc::clone(&counter), report.clone());
            thread::spawn(move || {
                let result = take_paced(stream, &drain, &counter);
                if result != Ok(0) {
                    let _ = report.send(result);
                }
            });
        }
    });
    (port, received, reports)
}

fn take_paced(
    mut stream: TcpStream,
    drain: &AtomicBool,
    counter: &AtomicU64,
) -> Result<u64, String> {
    let table = pattern();
    let mut buf = vec![0u8; 64 << 10];
    let mut got = 0u64;
    let mut burst = 0;
    loop {
        if burst >= BURST && !drain.load(Ordering::Relaxed) {
            thread::sleep(PAUSE);
            burst = 0;
        }
        let n = match stream.read(&mut buf) {
            Ok(0) => return Ok(got),
            Ok(n) => n,
            Err(e) => return Err(format!("read after {got} bytes: {e}")),
        };
        let at = usize::try_from(got % PERIOD as u64).expect("below the period");
        if buf[..n] != table[at..at + n] {
            return Err(format!(
                "the bytes after offset {got} differ from what was sent"
            ));
        }
        got += n as u64;
        burst += n;
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

#[test]
fn round_trips_are_not_held_up_behind_a_bulk_transfer() {
    let dir = TempDir::new("fairness");
    let Some(serve) = Serve::start(dir.path(), &[]) else {
        return;
    };
    let echo = echo_service();
    let drain = Arc::new(AtomicBool::new(false));
    let (sink, sunk, reports) = paced_sink(Arc::clone(&drain));
    let bulk_port = free_port();
    let forward = format!("{bulk_port}:127.0.0.1:{sink}");
    let (mut client, small_port) =
        local_forward(&serve.key.private_key, serve.port, echo, &["-L", &forward]);
    wait_for_port(bulk_port, Some(&mut client), "the client's second forward");

    // The bulk transfer: the pattern, written as fast as the forward takes it.
    let mut bulk = TcpStream::connect((Ipv4Addr::LOCALHOST, bulk_port)).expect("connect");
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let writer = thread::spawn(move || {
        let table = pattern();
        let mut sent = 0u64;
        while !stopped.load(Ordering::Relaxed) {
            let at = usize::try_from(sent % PERIOD as u64).expect("below the period");
            let n = bulk
                .write(&table[at..at + PATTERN_CHUNK])
                .expect("write the bulk transfer");
            sent += n as u64;
        }
        bulk.shutdown(Shutdown::Write)
            .expect("shut the bulk transfer");
        sent
    });
    let flowing = Instant::now() + Duration::from_secs(30);
    while sunk.load(Ordering::Relaxed) < 2 * BURST as u64 {
        assert!(Instant::now() < flowing, "the bulk transfer is not flowing");
        thread::sleep(Duration::from_millis(10));
    }

    let mut small = TcpStream::connect((Ipv4Addr::LOCALHOST, small_port)).expect("connect");
    small.set_nodelay(true).expect("no delay");
    small
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    let mut round_trip = |byte: u8| {
        let started = Instant::now();
        small.write_all(&[byte]).expect("write the request");
        let mut back = [0u8];
        small.read_exact(&mut back).expect("read the answer");
        assert_eq!(back, [byte], "the answer differs from the request");
        started.elapsed()
    };
    // The first one waits for its channel to open.
    round_trip(0xff);
    let (started, sunk_before) = (Instant::now(), sunk.load(Ordering::Relaxed));
    // Spaced out, as typing is, so that they meet the bulk channel in every state.
    let mut times: Vec<Duration> = (0..ROUND_TRIPS)
        .map(|i| {
            thread::sleep(Duration::from_millis(5));
            let took = round_trip(i as u8);
            assert!(took < WORST, "round trip {i} took {took:.2?}");
            took
        })
        .collect();
    let took = started.elapsed();
    let during = sunk.load(Ordering::Relaxed) - sunk_before;

    drain.store(true, Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let sent = writer.join().expect("the bulk writer");
    let received = reports
        .recv_timeout(Duration::from_secs(60))
        .expect("the bulk transfer's end")
        .unwrap_or_else(|e| panic!("the bulk transfer: {e}"));
    assert_eq!(received, sent, "the bulk transfer lost bytes");

    times.sort();
    let (median, worst) = (times[ROUND_TRIPS / 2], times[ROUND_TRIPS - 1]);
    let window_time =
        Duration::from_secs_f64((2 << 20) as f64 * took.as_secs_f64() / during.max(1) as f64);
    eprintln!(
        "{ROUND_TRIPS} round trips in {took:.2?}: median {median:.2?}, 90th percentile {:.2?}, worst {worst:.2?}; the bulk moved {} KiB meanwhile, 2 MiB in {window_time:.2?}",
        times[ROUND_TRIPS * 9 / 10],
        during >> 10
    );
    assert!(
        during >= 2 * BURST as u64,
        "the bulk transfer moved only {during} bytes during the round trips"
    );
    assert!(
        window_time > P95 * 5,
        "the bulk transfer ran too fast for the bound to mean anything: 2 MiB in {window_time:.2?}"
    );
    assert!(
        median < MEDIAN,
        "half the round trips took {median:.2?} or more"
    );
    let p95 = times[ROUND_TRIPS * 95 / 100];
    assert!(p95 < P95, "5 % of the round trips took {p95:.2?} or more");
    assert!(client.alive(), "the client died");
}
