//! Name lookups for the forwarding server's outgoing connects, off the loop's thread.
//!
//! The system's resolver blocks, sometimes for many seconds, and the loop has one thread
//! for every connection and channel: a lookup on it would stall them all. So a name is
//! handed to a small pool of worker threads instead. The workers start as lookups first
//! arrive, at most [`MAX_WORKERS`] of them; each answer is queued for the loop, and the
//! loop's waker tells it to collect. The loop matches an answer to its endpoint by the
//! endpoint's slot and a lookup number that is never reused, so an answer for an endpoint
//! that is gone, or for a slot that now holds another one, is dropped.
//!
//! At most [`MAX_OUTSTANDING`] lookups are queued or running at once, for all the loop's
//! connections together, and at most [`MAX_PER_CONNECTION`] for any one of them; past
//! that a lookup is refused at once, so channel opens cannot queue unbounded work, and
//! one client asking for names that never answer can hold only some of the workers. A
//! lookup whose endpoint went away before a worker took it leaves the queue. Workers are never joined: one stuck in the system's resolver must not hold
//! up the end of the loop or the exit of the process. Once the loop is gone each worker
//! leaves the next time it looks at the queue.

use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;

use mio::Waker;

/// Lookups queued or running at once; more are refused with RESOURCE_SHORTAGE.
pub(crate) const MAX_OUTSTANDING: usize = 1024;

/// Lookups queued or running at once for one connection. A lookup that is running cannot
/// be withdrawn and may outlive the connect timeout (a resolver can wait 30 s for a DNS
/// server that never answers), so this is what keeps one client from taking every worker.
pub(crate) const MAX_PER_CONNECTION: usize = 16;

/// Worker threads at most: twice [`MAX_PER_CONNECTION`], so one connection's stuck lookups
/// leave as many workers again for everyone else. They are threads that mostly sleep.
pub(crate) const MAX_WORKERS: usize = 2 * MAX_PER_CONNECTION;

/// Answers a host name with the addresses to try for it, in order. The call blocks, and
/// is made on one of the loop's lookup threads, never on the loop's own.
///
/// The forwarding server uses [`SystemResolver`] unless
/// [`super::EventLoop::set_resolver`] gives it another. A resolver that panics answers
/// an error where panics unwind; the `gateway` binary is built to abort on a panic, so
/// there it ends the process.
pub trait Resolve: Send + Sync + std::fmt::Debug {
    /// The addresses of `host` for TCP port `port`, in the order to try them.
    fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>>;
}

/// The system's resolver (`getaddrinfo`: `/etc/hosts`, DNS, whatever the system is set
/// up to ask), in the order it prefers (RFC 6724).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        Ok((host, port).to_socket_addrs()?.collect())
    }
}

/// A lookup waiting for a worker.
#[derive(Debug)]
struct Job {
    id: u64,
    sock: usize,
    host: String,
    port: u16,
    /// The asking connection's count of lookups queued or running.
    owner: Arc<AtomicUsize>,
}

impl Job {
    /// The lookup is over (answered, withdrawn or dropped): the connection may ask again.
    fn finish(&self) {
        self.owner.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A finished lookup, for the endpoint in slot `sock` whose lookup number is `id`.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) sock: usize,
    pub(crate) id: u64,
    pub(crate) result: io::Result<Vec<SocketAddr>>,
}

/// Why a lookup was not taken.
#[derive(Debug)]
pub(crate) enum Refused {
    /// [`MAX_OUTSTANDING`] lookups are already queued or running.
    Busy,
    /// [`MAX_PER_CONNECTION`] lookups of this connection are already queued or running.
    TooMany,
    /// No worker could be started.
    NoThread(io::Error),
    /// The loop is gone.
    Closed,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Busy => write!(f, "too many name lookups in progress"),
            Refused::TooMany => write!(f, "too many name lookups in progress for this connection"),
            Refused::NoThread(e) => write!(f, "no thread for the name lookup: {e}"),
            Refused::Closed => write!(f, "the server is stopping"),
        }
    }
}

#[derive(Debug)]
struct State {
    resolver: Arc<dyn Resolve>,
    jobs: VecDeque<Job>,
    /// Lookups queued or running.
    outstanding: usize,
    workers: usize,
    /// Workers waiting for a job.
    idle: usize,
    /// Finished lookups the loop has not collected yet.
    answers: Vec<Answer>,
    next_id: u64,
    /// The loop is gone: workers leave, nothing more is taken.
    closed: bool,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    work: Condvar,
    waker: Arc<Waker>,
}

impl Shared {
    /// The state, even after a panic elsewhere: every change to it is made whole under
    /// the lock, and a resolver's panic is caught outside it.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The loop's end of the pool. Dropping it closes the pool: queued lookups are dropped
/// and the workers leave.
#[derive(Debug)]
pub(crate) struct Pool {
    shared: Arc<Shared>,
}

/// What a connection holds to ask for lookups.
#[derive(Debug)]
pub(crate) struct Lookups {
    shared: Arc<Shared>,
    /// This connection's lookups queued or running.
    mine: Arc<AtomicUsize>,
}

/// A lookup in progress. Dropping it withdraws the lookup if no worker has taken it yet;
/// an answer that comes anyway finds no ticket with its number and is dropped.
#[derive(Debug)]
pub(crate) struct Ticket {
    id: u64,
    shared: Arc<Shared>,
}

impl Ticket {
    /// The lookup number its answer carries.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        if let Some(at) = state.jobs.iter().position(|j| j.id == self.id)
            && let Some(job) = state.jobs.remove(at)
        {
            job.finish();
            state.outstanding -= 1;
        }
    }
}

impl Pool {
    /// A pool with no worker yet, whose answers wake the loop through `waker`.
    pub(crate) fn new(waker: Arc<Waker>) -> Pool {
        let state = State {
            resolver: Arc::new(SystemResolver),
            jobs: VecDeque::new(),
            outstanding: 0,
            workers: 0,
            idle: 0,
            answers: Vec::new(),
            next_id: 0,
            closed: false,
        };
        Pool {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                work: Condvar::new(),
                waker,
            }),
        }
    }

    /// A new connection's way to ask for lookups, with a count of its own.
    pub(crate) fn lookups(&self) -> Lookups {
        Lookups {
            shared: Arc::clone(&self.shared),
            mine: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Answers lookups asked for from now on with `resolver`.
    pub(crate) fn set_resolver(&self, resolver: Arc<dyn Resolve>) {
        self.shared.lock().resolver = resolver;
    }

    /// The lookups finished since the last call.
    pub(crate) fn take_answers(&self) -> Vec<Answer> {
        std::mem::take(&mut self.shared.lock().answers)
    }

    /// Lookups queued or running now.
    #[cfg(test)]
    pub(crate) fn outstanding(&self) -> usize {
        self.shared.lock().outstanding
    }

    /// Worker threads started and not yet gone.
    #[cfg(test)]
    pub(crate) fn workers(&self) -> usize {
        self.shared.lock().workers
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.closed = true;
        state.outstanding -= state.jobs.len();
        for job in state.jobs.drain(..) {
            job.finish();
        }
        state.answers.clear();
        drop(state);
        self.shared.work.notify_all();
    }
}

impl Lookups {
    /// Queues a lookup of `host` for the endpoint in slot `sock`, starting a worker if
    /// none is free and fewer than [`MAX_WORKERS`] run.
    pub(crate) fn submit(&self, host: &str, port: u16, sock: usize) -> Result<Ticket, Refused> {
        let mut state = self.shared.lock();
        if state.closed {
            return Err(Refused::Closed);
        }
        if self.mine.load(Ordering::Relaxed) >= MAX_PER_CONNECTION {
            return Err(Refused::TooMany);
        }
        if state.outstanding >= MAX_OUTSTANDING {
            return Err(Refused::Busy);
        }
        // Each queued job has an idle worker promised to it already.
        if state.jobs.len() >= state.idle && state.workers < MAX_WORKERS {
            let shared = Arc::clone(&self.shared);
            let spawned = thread::Builder::new()
                .name("gateway-lookup".to_owned())
                .spawn(move || work(&shared));
            match spawned {
                Ok(_detached) => state.workers += 1,
                // The workers there are will get to it.
                Err(_) if state.workers > 0 => {}
                Err(e) => return Err(Refused::NoThread(e)),
            }
        }
        let id = state.next_id;
        state.next_id += 1;
        state.jobs.push_back(Job {
            id,
            sock,
            host: host.to_owned(),
            port,
            owner: Arc::clone(&self.mine),
        });
        self.mine.fetch_add(1, Ordering::Relaxed);
        state.outstanding += 1;
        drop(state);
        self.shared.work.notify_one();
        Ok(Ticket {
            id,
            shared: Arc::clone(&self.shared),
        })
    }
}

/// A worker: takes jobs until the pool closes, answering each outside the lock.
fn work(shared: &Shared) {
    loop {
        let mut state = shared.lock();
        let job = loop {
            if state.closed {
                state.workers -= 1;
                return;
            }
            if let Some(job) = state.jobs.pop_front() {
                break job;
            }
            state.idle += 1;
            state = shared
                .work
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
            state.idle -= 1;
        };
        let resolver = Arc::clone(&state.resolver);
        drop(state);

        let result =
            panic::catch_unwind(AssertUnwindSafe(|| resolver.resolve(&job.host, job.port)))
                .unwrap_or_else(|_| Err(io::Error::other("the resolver failed")));

        let mut state = shared.lock();
        state.outstanding -= 1;
        job.finish();
        if state.closed {
            state.workers -= 1;
            return;
        }
        state.answers.push(Answer {
            sock: job.sock,
            id: job.id,
            result,
        });
        drop(state);
        // A loop that cannot be woken is going away; its answers go with it.
        let _ = shared.waker.wake();
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use mio::{Events, Poll, Token};

    use super::*;

    /// A resolver that answers `127.0.0.1` for every name, names starting `stuck` only
    /// once the gate opens, and says how many lookups are inside it.
    #[derive(Debug, Default)]
    struct Gate {
        state: Mutex<(bool, usize)>,
        changed: Condvar,
    }

    impl Gate {
        fn open(&self) {
            self.state.lock().expect("gate").0 = true;
            self.changed.notify_all();
        }

        /// Waits until `n` lookups are blocked inside.
        fn wait_inside(&self, n: usize) {
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut state = self.state.lock().expect("gate");
            while state.1 < n {
                assert!(
                    Instant::now() < deadline,
                    "{} of {n} lookups arrived",
                    state.1
                );
                state = self
                    .changed
                    .wait_timeout(state, Duration::from_millis(50))
                    .expect("gate")
                    .0;
            }
        }
    }

    impl Resolve for Gate {
        fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
            let mut state = self.state.lock().expect("gate");
            state.1 += 1;
            self.changed.notify_all();
            while !state.0 && host.starts_with("stuck") {
                state = self.changed.wait(state).expect("gate");
            }
            Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))])
        }
    }

    fn pool() -> (Poll, Pool) {
        let poll = Poll::new().expect("poll");
        let waker = Waker::new(poll.registry(), Token(7)).expect("waker");
        (poll, Pool::new(Arc::new(waker)))
    }

    /// Waits for the waker and collects answers until `n` have come.
    fn collect(poll: &mut Poll, pool: &Pool, n: usize) -> Vec<Answer> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut events = Events::with_capacity(8);
        let mut answers = Vec::new();
        while answers.len() < n {
            assert!(
                Instant::now() < deadline,
                "{} of {n} answers came",
                answers.len()
            );
            poll.poll(&mut events, Some(Duration::from_millis(100)))
                .expect("poll");
            answers.extend(pool.take_answers());
        }
        answers
    }

    #[test]
    fn answers_wake_the_loop_and_name_their_lookup() {
        let (mut poll, pool) = pool();
        assert_eq!(pool.workers(), 0, "no thread before the first lookup");
        let lookups = pool.lookups();
        let a = lookups.submit("localhost", 22, 3).expect("submit");
        let b = lookups.submit("localhost", 80, 3).expect("submit");
        assert_ne!(a.id(), b.id(), "one slot, two lookups, two numbers");

        let mut answers = collect(&mut poll, &pool, 2);
        answers.sort_by_key(|a| a.id);
        assert_eq!((answers[0].sock, answers[0].id), (3, a.id()));
        assert_eq!((answers[1].sock, answers[1].id), (3, b.id()));
        let addrs = answers[1].result.as_ref().expect("localhost resolves");
        assert!(addrs.iter().all(|a| a.port() == 80 && a.ip().is_loopback()));
        assert_eq!(pool.outstanding(), 0);
    }

    /// Stuck lookups fill the workers and then the queue; past the bound lookups are
    /// refused, and a withdrawn one makes room.
    #[test]
    fn outstanding_lookups_are_bounded() {
        let (mut poll, pool) = pool();
        let gate = Arc::new(Gate::default());
        pool.set_resolver(Arc::clone(&gate) as Arc<dyn Resolve>);
        // As many connections as it takes, each asking for all it may.
        let conns: Vec<Lookups> = (0..MAX_OUTSTANDING / MAX_PER_CONNECTION)
            .map(|_| pool.lookups())
            .collect();
        let mut tickets = Vec::new();
        for (c, lookups) in conns.iter().enumerate() {
            for i in 0..MAX_PER_CONNECTION {
                let slot = c * MAX_PER_CONNECTION + i;
                tickets.push(
                    lookups
                        .submit("stuck.test", 1, slot)
                        .expect("under the bound"),
                );
            }
        }
        gate.wait_inside(MAX_WORKERS);
        assert_eq!(pool.workers(), MAX_WORKERS, "the pool stops growing");
        let lookups = pool.lookups();
        assert!(matches!(
            lookups.submit("one.more.test", 1, 0),
            Err(Refused::Busy)
        ));

        // The last one is still queued: dropping it frees its place.
        drop(tickets.pop());
        assert_eq!(pool.outstanding(), MAX_OUTSTANDING - 1);
        tickets.push(lookups.submit("one.more.test", 1, 0).expect("room again"));

        // Withdraw all but the running ones, then let those finish.
        let running: Vec<Ticket> = tickets.drain(..MAX_WORKERS).collect();
        tickets.clear();
        assert_eq!(pool.outstanding(), MAX_WORKERS);
        gate.open();
        let answers = collect(&mut poll, &pool, MAX_WORKERS);
        let mut ids: Vec<u64> = answers.iter().map(|a| a.id).collect();
        ids.sort_unstable();
        let want: Vec<u64> = running.iter().map(Ticket::id).collect();
        assert_eq!(ids, want, "only the lookups that were running answer");
        assert_eq!(pool.outstanding(), 0);
    }

    /// One connection's stuck lookups take at most its share of the workers: its next
    /// lookup is refused, and another connection's lookups still get answered.
    #[test]
    fn one_connection_cannot_take_every_worker() {
        let (mut poll, pool) = pool();
        let gate = Arc::new(Gate::default());
        pool.set_resolver(Arc::clone(&gate) as Arc<dyn Resolve>);
        let greedy = pool.lookups();
        let stuck: Vec<Ticket> = (0..MAX_PER_CONNECTION)
            .map(|i| greedy.submit("stuck.test", 1, i).expect("within its share"))
            .collect();
        gate.wait_inside(MAX_PER_CONNECTION);
        assert!(matches!(
            greedy.submit("stuck.again.test", 1, 99),
            Err(Refused::TooMany)
        ));

        let other = pool.lookups();
        let ticket = other
            .submit("quick.test", 2, 100)
            .expect("another connection");
        let answers = collect(&mut poll, &pool, 1);
        assert_eq!((answers[0].sock, answers[0].id), (100, ticket.id()));

        // Once its lookups finish, the first connection may ask again.
        gate.open();
        let _ = collect(&mut poll, &pool, MAX_PER_CONNECTION);
        drop(stuck);
        greedy
            .submit("stuck.later.test", 1, 5)
            .expect("its lookups are over");
    }

    /// Closing the pool does not wait for a worker stuck in the resolver, and the worker
    /// leaves once its lookup returns.
    #[test]
    fn a_stuck_worker_does_not_hold_up_the_end() {
        let (_poll, pool) = pool();
        let gate = Arc::new(Gate::default());
        pool.set_resolver(Arc::clone(&gate) as Arc<dyn Resolve>);
        let lookups = pool.lookups();
        let ticket = lookups.submit("stuck.test", 1, 0).expect("submit");
        gate.wait_inside(1);

        let started = Instant::now();
        let shared = Arc::clone(&pool.shared);
        drop(pool);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the drop waited"
        );
        assert!(matches!(
            lookups.submit("late.test", 1, 0),
            Err(Refused::Closed)
        ));
        drop(ticket);

        gate.open();
        let deadline = Instant::now() + Duration::from_secs(10);
        while shared.lock().workers > 0 {
            assert!(Instant::now() < deadline, "the worker did not leave");
            thread::sleep(Duration::from_millis(10));
        }
        assert!(
            shared.lock().answers.is_empty(),
            "no answer after the close"
        );
    }

    #[derive(Debug)]
    struct Panics;

    impl Resolve for Panics {
        fn resolve(&self, _host: &str, _port: u16) -> io::Result<Vec<SocketAddr>> {
            panic!("a resolver with a bug");
        }
    }

    /// A worker that died with its resolver's panic would leave its lookup unanswered
    /// and, once every worker had, the pool with none: more panics than workers show
    /// that each is caught.
    #[test]
    fn a_resolver_that_panics_answers_an_error_and_the_worker_lives() {
        let (mut poll, pool) = pool();
        pool.set_resolver(Arc::new(Panics));
        let lookups = pool.lookups();
        for _ in 0..=MAX_WORKERS {
            let _ticket = lookups.submit("a.test", 1, 0).expect("submit");
            let answer = collect(&mut poll, &pool, 1).remove(0);
            assert!(answer.result.is_err());
        }
        assert_eq!(pool.outstanding(), 0);
    }
}
