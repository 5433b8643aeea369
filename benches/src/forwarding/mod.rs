//! Forwarding throughput and memory through a loopback `-L` forward: this project's
//! client and server beside OpenSSH's, in one run.
//!
//! A row is one pairing of client and server (`gateway` or `ssh` against `gateway serve`
//! or `sshd`), one direction, one cipher and one number of concurrent streams. Each round
//! takes one sample of every row in turn, so load from other processes lands on every row
//! alike; a row's figure is the median of its samples, and its ratio to `ssh>sshd` is the
//! median of the quotients of samples taken in the same round.
//!
//! Every sample starts its own client (and its own `gateway serve`, or a fresh sshd
//! session under one listening sshd), checks that the forward carries data unchanged,
//! times the transfer, reads the peak memory of both processes, and stops them again, so
//! that each sample's peak is its own.

pub mod far;
pub mod lab;
pub mod procfs;
pub mod report;

use lab::{Forward, Lab};

/// The client of a pairing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Client {
    /// `gateway -N -L ...`.
    Gateway,
    /// OpenSSH's `ssh -N -L ...`.
    Ssh,
}

/// The server of a pairing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Server {
    /// `gateway serve --permit-open ...`.
    Serve,
    /// OpenSSH's `sshd`.
    Sshd,
}

/// A client against a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pairing {
    pub client: Client,
    pub server: Server,
}

impl Pairing {
    /// Every pairing, in the order the table shows them.
    pub const ALL: [Pairing; 4] = [
        Pairing::new(Client::Gateway, Server::Serve),
        Pairing::new(Client::Gateway, Server::Sshd),
        Pairing::new(Client::Ssh, Server::Serve),
        Pairing::new(Client::Ssh, Server::Sshd),
    ];

    /// OpenSSH on both ends: what every row is divided by.
    pub const REFERENCE: Pairing = Pairing::new(Client::Ssh, Server::Sshd);

    /// Ours on both ends: the rows the goals are about.
    pub const OURS: Pairing = Pairing::new(Client::Gateway, Server::Serve);

    pub const fn new(client: Client, server: Server) -> Pairing {
        Pairing { client, server }
    }

    pub fn label(self) -> &'static str {
        match (self.client, self.server) {
            (Client::Gateway, Server::Serve) => "gateway>serve",
            (Client::Gateway, Server::Sshd) => "gateway>sshd",
            (Client::Ssh, Server::Serve) => "ssh>serve",
            (Client::Ssh, Server::Sshd) => "ssh>sshd",
        }
    }
}

/// Which way the data goes through the forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The local application writes into the forward, the far sink reads.
    ClientToServer,
    /// A far source writes, the local application reads.
    ServerToClient,
}

impl Direction {
    pub const ALL: [Direction; 2] = [Direction::ClientToServer, Direction::ServerToClient];

    pub fn label(self) -> &'static str {
        match self {
            Direction::ClientToServer => "c>s",
            Direction::ServerToClient => "s>c",
        }
    }
}

/// The ciphers measured, as both clients name them in `-o Ciphers=`.
pub const CIPHERS: [&str; 2] = ["aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com"];

/// What every pairing is compared on: a direction, a cipher and a number of streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Section {
    pub direction: Direction,
    pub cipher: &'static str,
    pub streams: usize,
}

impl Section {
    pub fn label(self) -> String {
        let streams = if self.streams == 1 {
            "1 stream".to_owned()
        } else {
            format!("{} streams", self.streams)
        };
        format!("{} {} {streams}", self.direction.label(), self.cipher)
    }
}

/// One row of the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Row {
    pub pairing: Pairing,
    pub section: Section,
}

impl Row {
    /// The name filters match against, such as `gateway>serve c>s aes128-gcm 1-stream`.
    pub fn name(self) -> String {
        let streams = match self.section.streams {
            1 => "1-stream".to_owned(),
            n => format!("{n}-streams"),
        };
        format!(
            "{} {} {} {streams}",
            self.pairing.label(),
            self.section.direction.label(),
            self.section.cipher,
        )
    }

    /// The `ssh>sshd` row of the same section.
    pub fn reference(self) -> Row {
        Row {
            pairing: Pairing::REFERENCE,
            ..self
        }
    }
}

/// Every row for `many` concurrent streams in the many-stream sections, in table order:
/// by section, then by pairing. With `many` at 1 there are only the one-stream sections.
pub fn all_rows(many: usize) -> Vec<Row> {
    let mut rows = Vec::new();
    let counts = if many > 1 { vec![1, many] } else { vec![1] };
    for streams in counts {
        for cipher in CIPHERS {
            for direction in Direction::ALL {
                let section = Section {
                    direction,
                    cipher,
                    streams,
                };
                rows.extend(Pairing::ALL.map(|pairing| Row { pairing, section }));
            }
        }
    }
    rows
}

/// The rows that `filters` select, plus the reference row of each section they touch, so
/// that every selected row has a ratio. A filter is a set of words separated by spaces,
/// all of which must occur in the row's name; a row is selected when any filter matches.
pub fn select(rows: &[Row], filters: &[String]) -> Vec<Row> {
    if filters.is_empty() {
        return rows.to_vec();
    }
    let matches = |row: Row| {
        let name = row.name();
        filters
            .iter()
            .any(|f| f.split_whitespace().all(|word| name.contains(word)))
    };
    let chosen: Vec<Row> = rows.iter().copied().filter(|&r| matches(r)).collect();
    let touched = |row: Row| chosen.iter().any(|c| c.section == row.section);
    rows.iter()
        .copied()
        .filter(|&r| chosen.contains(&r) || (r.pairing == Pairing::REFERENCE && touched(r)))
        .collect()
}

/// How much a run measures, from the environment (see benches/README.md).
#[derive(Clone, Debug)]
pub struct Settings {
    /// Samples of every row, taken in interleaved rounds.
    pub rounds: usize,
    /// Bytes each row moves per sample, shared evenly among its streams.
    pub bytes_per_sample: u64,
    /// Concurrent streams in the many-stream sections.
    pub many_streams: usize,
    /// Row filters (see [`select`]).
    pub filters: Vec<String>,
}

impl Settings {
    /// The default: 3 rounds of 512 MiB per row per sample, with 200 streams in the
    /// many-stream sections.
    pub const FULL: Settings = Settings {
        rounds: 3,
        bytes_per_sample: 512 << 20,
        many_streams: 200,
        filters: Vec::new(),
    };

    /// The smoke run: 1 round of 4 MiB per row, every row still there.
    pub const QUICK: Settings = Settings {
        rounds: 1,
        bytes_per_sample: 4 << 20,
        many_streams: 200,
        filters: Vec::new(),
    };

    /// The plan for this run: quick when `quick` or `BENCH_QUICK` says so, then
    /// `BENCH_ROUNDS`, `BENCH_MIB`, `BENCH_STREAMS` and `BENCH_ROWS` (comma-separated
    /// filters, added to `filters`) in place of its own figures.
    ///
    /// # Errors
    ///
    /// On a value that is not a whole number above 0: a mistyped setting would otherwise
    /// go unnoticed in a long run.
    pub fn from_env(quick: bool, mut filters: Vec<String>) -> Result<Settings, String> {
        let quick = quick || std::env::var("BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        let base = if quick { Self::QUICK } else { Self::FULL };
        let read = |name: &str| -> Result<Option<u64>, String> {
            match std::env::var(name) {
                Err(_) => Ok(None),
                Ok(v) => v
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|&n| n > 0)
                    .map(Some)
                    .ok_or_else(|| format!("{name}={v}: expected a whole number above 0")),
            }
        };
        let as_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        if let Ok(rows) = std::env::var("BENCH_ROWS") {
            filters.extend(
                rows.split(',')
                    .map(str::trim)
                    .filter(|f| !f.is_empty())
                    .map(str::to_owned),
            );
        }
        Ok(Settings {
            rounds: read("BENCH_ROUNDS")?.map_or(base.rounds, as_usize),
            bytes_per_sample: read("BENCH_MIB")?.map_or(base.bytes_per_sample, |m| m << 20),
            many_streams: read("BENCH_STREAMS")?.map_or(base.many_streams, as_usize),
            filters,
        })
    }

    /// Bytes each stream of `row` moves per sample.
    pub fn bytes_per_stream(&self, row: Row) -> u64 {
        (self.bytes_per_sample / row.section.streams as u64).max(1)
    }
}

/// What one sample of one row measured.
#[derive(Clone, Debug)]
pub struct Sample {
    /// 10^9 bits of application data per second, at the receiver.
    pub gbit_per_s: f64,
    /// The client's peak resident memory (VmHWM), in KiB.
    pub client_peak_kib: u64,
    /// The server's: for sshd, the sum over its processes for this connection.
    pub server_peak_kib: u64,
    /// CPU time the client used during the transfer, per second of the transfer.
    pub client_cpu: f64,
    /// The same for the server's processes.
    pub server_cpu: f64,
    /// The server processes measured, by name.
    pub server_processes: Vec<String>,
}

/// Takes one sample of `row`: starts its client and server, checks the forward, times
/// the transfer and reads the processes' peaks before stopping them.
pub fn sample(lab: &Lab, row: Row, settings: &Settings) -> Result<Sample, String> {
    let mut forward = lab.open(row.pairing, row.section.cipher)?;
    let measured = match time_forward(lab, &forward, row, settings) {
        Err(e) if !forward.alive() => Err(format!(
            "{e}; the client had exited, saying: {:?}",
            forward.client_errors()
        )),
        Ok(_) if !forward.alive() => Err("the client or the server exited".to_owned()),
        other => other,
    };
    let closed = forward.close();
    let sample = measured?;
    closed?;
    Ok(sample)
}

/// Checks and times an open forward.
fn time_forward(
    lab: &Lab,
    forward: &Forward,
    row: Row,
    settings: &Settings,
) -> Result<Sample, String> {
    let far = lab.far();
    far.check(forward.local_port())?;
    let client = forward.client_pid();
    let servers = forward.server_pids();
    if servers.is_empty() {
        return Err("no server process found for the connection".to_owned());
    }
    let ticks = |pids: &[u32]| pids.iter().map(|&p| procfs::cpu_ticks(p)).sum::<u64>();
    let (client_before, servers_before) = (ticks(&[client]), ticks(&servers));
    let bytes = settings.bytes_per_stream(row);
    let elapsed = far.transfer(
        forward.local_port(),
        row.section.direction,
        row.section.streams,
        bytes,
    )?;
    let (client_after, servers_after) = (ticks(&[client]), ticks(&servers));

    let seconds = elapsed.as_secs_f64();
    let cpu = |ticks: u64| ticks as f64 / procfs::TICKS_PER_SECOND / seconds;
    let total = bytes * row.section.streams as u64;
    Ok(Sample {
        gbit_per_s: total as f64 * 8.0 / seconds / 1e9,
        client_peak_kib: procfs::peak_kib(client),
        server_peak_kib: servers.iter().map(|&p| procfs::peak_kib(p)).sum(),
        client_cpu: cpu(client_after.saturating_sub(client_before)),
        server_cpu: cpu(servers_after.saturating_sub(servers_before)),
        server_processes: servers.iter().map(|&p| procfs::command_name(p)).collect(),
    })
}

/// Takes `settings.rounds` samples of every row, one of each row per round, calling
/// `progress` before each. The result holds every row's samples in round order.
pub fn measure(
    lab: &Lab,
    rows: &[Row],
    settings: &Settings,
    mut progress: impl FnMut(usize, &Row),
) -> Vec<Vec<Result<Sample, String>>> {
    let mut samples: Vec<Vec<Result<Sample, String>>> = rows.iter().map(|_| Vec::new()).collect();
    for round in 0..settings.rounds {
        for (row, out) in rows.iter().zip(&mut samples) {
            progress(round, row);
            out.push(sample(lab, *row, settings));
        }
    }
    samples
}
