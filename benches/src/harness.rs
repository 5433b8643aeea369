//! A small sampling harness: warm up, calibrate, then take interleaved samples of every
//! case and report medians.
//!
//! The samples of all cases are taken in rounds, one sample of each case per round, so a
//! burst of load from another process (builds on the other core, say) lands on every case
//! alike instead of skewing the one that happened to be running. Ratios between cases of
//! one run are then trustworthy even when absolute figures wobble.
//!
//! Each sample is timed twice: by the wall clock, and by the CPU time of the measuring
//! thread, which leaves out the time other processes held the CPU. Medians and ratios use
//! the CPU time where the platform gives it.
//!
//! It also reads the command line the same way for every benchmark ([`Args`]).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::machine;

/// What a benchmark's command line asks for. `cargo bench` passes `--bench`, and a test
/// run (`cargo test --all-targets`) does not, so a benchmark without it only checks that
/// its cases work; `--quick` asks for a short, noisier run; a word without a dash picks
/// the rows whose names hold it. Other flags, which cargo or libtest conventions may pass,
/// change nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Args {
    pub bench: bool,
    pub quick: bool,
    pub filters: Vec<String>,
}

impl Args {
    /// This process's arguments.
    pub fn from_env() -> Self {
        Self::parse(std::env::args().skip(1))
    }

    /// `args`, the program's name left out.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Self {
        let mut parsed = Self::default();
        for arg in args {
            match arg.as_str() {
                "--bench" => parsed.bench = true,
                "--quick" => parsed.quick = true,
                other if other.starts_with('-') => {}
                _ => parsed.filters.push(arg),
            }
        }
        parsed
    }

    /// Whether the row `name` runs: every row when no word was given.
    pub fn picks(&self, name: &str) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|f| name.contains(f.as_str()))
    }
}

/// How long each case warms up and how its samples are taken.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Time spent running a case before measuring it; also used to calibrate how many
    /// units make one sample.
    pub warmup: Duration,
    /// The least time one sample lasts.
    pub sample: Duration,
    /// Samples per case. Odd, so the median is one real sample.
    pub samples: usize,
}

impl Plan {
    /// The default: about 1.2 s per case, in rounds short enough that load from other
    /// processes changes little within one.
    pub const FULL: Self = Self {
        warmup: Duration::from_millis(250),
        sample: Duration::from_millis(60),
        samples: 15,
    };

    /// For a quick look: figures are noisier.
    pub const QUICK: Self = Self {
        warmup: Duration::from_millis(50),
        sample: Duration::from_millis(30),
        samples: 3,
    };

    /// Prints the lines every in-memory benchmark's report starts with: the machine (libc,
    /// CPU, build), the load average before the run (`load_before`) and now, and this
    /// plan.
    pub fn print_header(self, load_before: &str) {
        println!("libc:   {}", machine::libc());
        println!(
            "cpu:    {} ({} logical CPUs; {})",
            machine::cpu_model(),
            machine::cpus(),
            machine::cpu_features()
        );
        println!("build:  {}", machine::build());
        println!(
            "load:   {load_before} before, {} after (1-minute load average; above 0 means \
             something else ran)",
            machine::load_average()
        );
        println!(
            "plan:   {} samples per row taken in interleaved rounds, each at least {} ms, after a \
             {} ms warm-up",
            self.samples,
            self.sample.as_millis(),
            self.warmup.as_millis()
        );
        println!();
    }

    /// This plan with any of `BENCH_SAMPLES`, `BENCH_SAMPLE_MS` and `BENCH_WARMUP_MS`
    /// that the environment sets in place of its own figures: more or longer samples for
    /// steadier medians on a busy machine, fewer for a quick look.
    ///
    /// # Panics
    ///
    /// On a value that is not a whole number, or a sample count of 0: a mistyped setting
    /// would otherwise go unnoticed in a long run.
    pub fn with_env(self) -> Self {
        let read = |name: &str| {
            std::env::var(name).ok().map(|v| {
                v.trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|&n| name != "BENCH_SAMPLES" || n > 0)
                    .unwrap_or_else(|| panic!("{name}={v}: expected a whole number above 0"))
            })
        };
        Self {
            warmup: read("BENCH_WARMUP_MS").map_or(self.warmup, Duration::from_millis),
            sample: read("BENCH_SAMPLE_MS").map_or(self.sample, Duration::from_millis),
            samples: read("BENCH_SAMPLES")
                .map_or(self.samples, |n| usize::try_from(n).unwrap_or(usize::MAX)),
        }
    }
}

/// One thing to measure. `run(n)` processes `n` units of `bytes_per_unit` bytes each.
pub struct Case<'a> {
    pub name: String,
    pub bytes_per_unit: u64,
    run: Box<dyn FnMut(u64) + 'a>,
}

impl<'a> Case<'a> {
    pub fn new(name: impl Into<String>, bytes_per_unit: u64, run: impl FnMut(u64) + 'a) -> Self {
        Self {
            name: name.into(),
            bytes_per_unit,
            run: Box::new(run),
        }
    }

    /// Runs `units` units once, unmeasured: the smoke check that `cargo test` does.
    pub fn run_once(&mut self, units: u64) {
        (self.run)(units);
    }

    /// Runs `units` units and returns the wall-clock time and, where the kernel tells it,
    /// the time this thread spent on a CPU.
    fn time(&mut self, units: u64) -> (Duration, Option<Duration>) {
        let cpu_start = thread_cpu_time();
        let start = Instant::now();
        (self.run)(units);
        let wall = start.elapsed();
        let cpu = cpu_start
            .zip(thread_cpu_time())
            .map(|(a, b)| b.saturating_sub(a));
        (wall, cpu)
    }
}

impl std::fmt::Debug for Case<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Case")
            .field("name", &self.name)
            .field("bytes_per_unit", &self.bytes_per_unit)
            .finish_non_exhaustive()
    }
}

/// The time this thread has spent running on a CPU (`CLOCK_THREAD_CPUTIME_ID`).
///
/// On a shared machine the wall clock also counts the time other processes held the CPU;
/// this does not, so it measures the code rather than the neighbours. (The kernel's
/// /proc/thread-self/schedstat holds the same figure without a dependency, but it is only
/// brought up to date at scheduler ticks, 4 ms apart here, too coarse for a sample.)
#[cfg(target_os = "linux")]
pub fn thread_cpu_time() -> Option<Duration> {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    let secs = u64::try_from(t.tv_sec).ok()?;
    let nanos = u32::try_from(t.tv_nsec).ok()?;
    Some(Duration::new(secs, nanos))
}

/// Elsewhere only the wall clock is used.
#[cfg(not(target_os = "linux"))]
pub fn thread_cpu_time() -> Option<Duration> {
    None
}

/// The samples of one case, in GB/s (10^9 bytes per second), one per round in round order.
#[derive(Clone, Debug)]
pub struct Measured {
    pub name: String,
    /// Bytes over the time the thread spent on a CPU; empty where that time is unknown.
    pub cpu: Vec<f64>,
    /// Bytes over wall-clock time.
    pub wall: Vec<f64>,
    /// Bytes one sample moved.
    pub bytes_per_sample: u64,
}

impl Measured {
    /// The samples ratios and goals are judged on: on-CPU where known, else wall-clock.
    pub fn primary(&self) -> &[f64] {
        if self.cpu.is_empty() {
            &self.wall
        } else {
            &self.cpu
        }
    }

    pub fn median(&self) -> f64 {
        median(self.primary())
    }

    pub fn wall_median(&self) -> f64 {
        median(&self.wall)
    }

    /// The spread of the primary samples, (fastest - slowest) / median, in percent.
    pub fn spread_percent(&self) -> f64 {
        let s = self.primary();
        let (lo, hi) = s.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        });
        (hi - lo) / self.median() * 100.0
    }

    /// The median over rounds of this case's sample divided by `other`'s sample of the
    /// same round. Samples of one round were taken close together in time, so a change
    /// in load between rounds cancels out of each quotient.
    pub fn ratio_to(&self, other: &Self) -> f64 {
        let quotients: Vec<f64> = self
            .primary()
            .iter()
            .zip(other.primary())
            .map(|(a, b)| a / b)
            .collect();
        median(&quotients)
    }
}

/// Measures every case by `plan`, printing progress on stderr when it is a terminal.
pub fn measure(cases: &mut [Case<'_>], plan: Plan) -> Vec<Measured> {
    let progress = Progress::new();
    let units: Vec<u64> = cases
        .iter_mut()
        .map(|case| {
            progress.show(&format!("warming up {}", case.name));
            calibrate(case, plan)
        })
        .collect();

    let mut measured: Vec<Measured> = cases
        .iter()
        .zip(&units)
        .map(|(case, &n)| Measured {
            name: case.name.clone(),
            cpu: Vec::with_capacity(plan.samples),
            wall: Vec::with_capacity(plan.samples),
            bytes_per_sample: n * case.bytes_per_unit,
        })
        .collect();
    let mut cpu_known = true;
    for round in 0..plan.samples {
        progress.show(&format!(
            "sampling: round {} of {}",
            round + 1,
            plan.samples
        ));
        for ((case, &n), out) in cases.iter_mut().zip(&units).zip(&mut measured) {
            let (wall, cpu) = case.time(n);
            let bytes = out.bytes_per_sample as f64;
            out.wall.push(bytes / wall.as_secs_f64() / 1e9);
            match cpu.filter(|t| !t.is_zero()) {
                Some(cpu) => out.cpu.push(bytes / cpu.as_secs_f64() / 1e9),
                None => cpu_known = false,
            }
        }
    }
    progress.done();

    if !cpu_known {
        for m in &mut measured {
            m.cpu.clear();
        }
    }
    measured
}

/// One status line on stderr, rewritten in place on a terminal and left out elsewhere so
/// that a saved report holds only the table.
struct Progress {
    terminal: bool,
}

impl Progress {
    fn new() -> Self {
        Self {
            terminal: std::io::stderr().is_terminal(),
        }
    }

    fn show(&self, status: &str) {
        if self.terminal {
            let mut err = std::io::stderr().lock();
            // A failed status line is not worth stopping the measurement for.
            let _ = write!(err, "\r{status:<70}");
            let _ = err.flush();
        }
    }

    fn done(&self) {
        if self.terminal {
            eprint!("\r{:<70}\r", "");
        }
    }
}

/// Runs the case for the warm-up time, doubling the units per call, and returns how many
/// units make a sample of at least `plan.sample`.
fn calibrate(case: &mut Case<'_>, plan: Plan) -> u64 {
    let start = Instant::now();
    let mut n = 1;
    let mut last = case.time(n).0;
    // The bound on `n` only matters for a case that does no work per unit.
    while start.elapsed() < plan.warmup && n < 1 << 40 {
        n *= 2;
        last = case.time(n).0;
    }
    let per_unit = last.as_secs_f64() / n as f64;
    (plan.sample.as_secs_f64() / per_unit).ceil().max(1.0) as u64
}

/// The median; the mean of the middle two for an even count.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_pick_the_mode_and_the_rows() {
        let args = Args::parse(["--bench", "--nocapture", "aes", "--quick"].map(String::from));
        assert!(args.bench && args.quick);
        assert_eq!(args.filters, ["aes"]);
        assert!(args.picks("packet aes128-ctr") && !args.picks("packet chacha20"));
        assert!(Args::parse([]).picks("anything"));
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[9.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 9.0, 2.0]), 3.0);
    }

    #[test]
    fn measures_every_case_in_rounds() {
        let mut sum = 0u64;
        let mut cases = [Case::new("sum", 1000, |n| {
            for i in 0..n {
                sum = std::hint::black_box(sum.wrapping_add(i));
            }
        })];
        let plan = Plan {
            warmup: Duration::from_millis(1),
            sample: Duration::from_millis(1),
            samples: 3,
        };
        let measured = measure(&mut cases, plan);
        assert_eq!(measured.len(), 1);
        assert_eq!(measured[0].wall.len(), 3);
        assert!(measured[0].cpu.is_empty() || measured[0].cpu.len() == 3);
        assert_eq!(measured[0].bytes_per_sample % 1000, 0);
        assert!((measured[0].ratio_to(&measured[0]) - 1.0).abs() < 1e-12);
    }
}
