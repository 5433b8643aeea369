//! The forwarding table: one line per row, grouped by section (direction, cipher,
//! streams), every row's throughput divided by the `ssh>sshd` row of its section.

use std::fmt::Write as _;

use super::{Pairing, Row, Sample, Section};
use crate::harness::median;

/// The goals for `gateway>serve`: times the reference's throughput in one stream and in
/// many, and the client's peak memory.
pub const GOAL_ONE_STREAM: f64 = 2.0;
pub const GOAL_MANY_STREAMS: f64 = 5.0;
pub const GOAL_CLIENT_MIB: f64 = 64.0;

/// What the columns mean, printed above the table.
pub const LEGEND: &str = "\
Gbit/s:   10^9 bits of application data per second of wall-clock time, counted at the
          receiver (the far sink for c>s, the local application for s>c); median sample
x ref:    / the ssh>sshd row of the same direction, cipher and stream count: the median
          over rounds of the quotient of two samples of the same round
spread:   (fastest - slowest sample) / median sample
cli MiB:  the client's peak resident memory (VmHWM), largest over the samples
srv MiB:  the same for the server process(es) of the connection
cpu:      CPU time the client / server used per second of the transfer (1.00 = one core);
          median sample
goal:     gateway>serve at 2x the reference or better in one stream, 5x or better across
          many streams, with its client under 64 MiB";

/// The table, rows in the order given, with samples in round order for each row.
pub fn table(rows: &[Row], samples: &[Vec<Result<Sample, String>>]) -> String {
    let by_row = |row: Row| rows.iter().position(|&r| r == row).map(|i| &samples[i][..]);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<15} {:>7} {:>6} {:>7} {:>8} {:>8} {:>9}  goal",
        "row", "Gbit/s", "x ref", "spread", "cli MiB", "srv MiB", "cpu c/s"
    );
    let mut section: Option<Section> = None;
    for (&row, samples) in rows.iter().zip(samples) {
        if section != Some(row.section) {
            let _ = writeln!(out, "{}", row.section.label());
            section = Some(row.section);
        }
        let reference = by_row(row.reference());
        let _ = writeln!(out, "  {}", line(row, samples, reference));
    }
    out
}

/// One row's line.
fn line(
    row: Row,
    samples: &[Result<Sample, String>],
    reference: Option<&[Result<Sample, String>]>,
) -> String {
    let label = row.pairing.label();
    let ok: Vec<&Sample> = samples.iter().filter_map(|s| s.as_ref().ok()).collect();
    let errors: Vec<&String> = samples.iter().filter_map(|s| s.as_ref().err()).collect();
    if ok.is_empty() {
        let why = errors.first().map_or("no samples", |e| e.as_str());
        return format!("{label:<13} failed in every sample: {why}");
    }

    let gbit: Vec<f64> = ok.iter().map(|s| s.gbit_per_s).collect();
    let mid = median(&gbit);
    let (lo, hi) = gbit.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &x| {
        (lo.min(x), hi.max(x))
    });
    let spread = (hi - lo) / mid * 100.0;
    let ratio = reference.and_then(|r| ratio(samples, r));
    let mib = |kib: u64| kib as f64 / 1024.0;
    let client_mib = ok
        .iter()
        .map(|s| mib(s.client_peak_kib))
        .fold(0.0, f64::max);
    let server_mib = ok
        .iter()
        .map(|s| mib(s.server_peak_kib))
        .fold(0.0, f64::max);
    let client_cpu = median(&ok.iter().map(|s| s.client_cpu).collect::<Vec<_>>());
    let server_cpu = median(&ok.iter().map(|s| s.server_cpu).collect::<Vec<_>>());

    let mut text = format!(
        "{label:<13} {mid:>7.2} {:>6} {spread:>6.0}% {client_mib:>8.1} {server_mib:>8.1} \
         {client_cpu:>4.2}/{server_cpu:<4.2}",
        ratio.map_or("-".to_owned(), |r| format!("{r:.2}")),
    );
    if row.pairing == Pairing::OURS {
        let _ = write!(text, "  {}", goal(row, ratio, client_mib));
    }
    if !errors.is_empty() {
        let _ = write!(
            text,
            "  ({} of {} samples failed: {})",
            errors.len(),
            samples.len(),
            errors[0]
        );
    }
    text
}

/// The median over rounds of `samples[i] / reference[i]`, over the rounds where both
/// samples succeeded.
fn ratio(samples: &[Result<Sample, String>], reference: &[Result<Sample, String>]) -> Option<f64> {
    let quotients: Vec<f64> = samples
        .iter()
        .zip(reference)
        .filter_map(|(a, b)| Some(a.as_ref().ok()?.gbit_per_s / b.as_ref().ok()?.gbit_per_s))
        .collect();
    (!quotients.is_empty()).then(|| median(&quotients))
}

/// Whether a `gateway>serve` row meets its goals, and if not, which it misses.
fn goal(row: Row, ratio: Option<f64>, client_mib: f64) -> String {
    let wanted = if row.section.streams == 1 {
        GOAL_ONE_STREAM
    } else {
        GOAL_MANY_STREAMS
    };
    let mut missed = Vec::new();
    match ratio {
        Some(r) if r >= wanted => {}
        Some(_) => missed.push(format!("below {wanted}x")),
        None => missed.push("no reference".to_owned()),
    }
    if client_mib >= GOAL_CLIENT_MIB {
        missed.push(format!("client over {GOAL_CLIENT_MIB} MiB"));
    }
    if missed.is_empty() {
        "ok".to_owned()
    } else {
        missed.join(", ")
    }
}

/// The server processes the sshd rows measured, such as `sshd-session x2`, from the
/// first sample that found any.
pub fn sshd_processes(rows: &[Row], samples: &[Vec<Result<Sample, String>>]) -> Option<String> {
    let names = rows
        .iter()
        .zip(samples)
        .filter(|(row, _)| row.pairing.server == super::Server::Sshd)
        .flat_map(|(_, samples)| samples.iter().filter_map(|s| s.as_ref().ok()))
        .map(|s| &s.server_processes)
        .find(|names| !names.is_empty())?;
    let mut counted: Vec<(String, usize)> = Vec::new();
    for name in names {
        match counted.iter_mut().find(|(n, _)| n == name) {
            Some((_, count)) => *count += 1,
            None => counted.push((name.clone(), 1)),
        }
    }
    Some(
        counted
            .iter()
            .map(|(name, count)| format!("{name} x{count}"))
            .collect::<Vec<_>>()
            .join(", "),
    )
}
