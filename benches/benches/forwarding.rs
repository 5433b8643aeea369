//! Forwarding through a loopback `-L` forward: this project's client and server beside
//! OpenSSH's, in one run.
//!
//! Four pairings (`gateway>serve`, `gateway>sshd`, `ssh>serve`, `ssh>sshd`), both
//! directions, `aes128-gcm@openssh.com` and `chacha20-poly1305@openssh.com`, one stream
//! and 200 concurrent streams. Rows are sampled round-robin for several rounds, and each
//! row's throughput is printed with its ratio to `ssh>sshd` of the same direction, cipher
//! and stream count, beside the peak memory of the client and of the server. The goals:
//! `gateway>serve` at 2x `ssh>sshd` or better in one stream, 5x or better across 200
//! streams, with the client's peak memory under 64 MiB.
//!
//! `cargo bench -p benches --bench forwarding` runs it with the release build of
//! `gateway` (built first, unless `GATEWAY_BIN` names one) and OpenSSH 10.0 from
//! `target/peers`. `-- --quick` or `BENCH_QUICK=1` is the smoke run; `BENCH_ROUNDS`,
//! `BENCH_MIB`, `BENCH_STREAMS` and `BENCH_ROWS` (or arguments) change what runs; see
//! benches/README.md. Run without `--bench`, as `cargo test --all-targets` does, it only
//! says how to run it: it needs the release binary and the peers.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use benches::forwarding::lab::Lab;
use benches::forwarding::{Settings, all_rows, measure, procfs, report, select};
use benches::harness::Args;
use benches::machine;

fn main() -> ExitCode {
    let args = Args::from_env();
    if !args.bench {
        println!(
            "forwarding: needs the release gateway and OpenSSH; run `cargo bench -p benches \
             --bench forwarding` (BENCH_QUICK=1 for a smoke run)"
        );
        return ExitCode::SUCCESS;
    }
    match run(args.quick, args.filters) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("forwarding: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(quick: bool, filters: Vec<String>) -> Result<(), String> {
    let settings = Settings::from_env(quick, filters)?;
    let rows = select(&all_rows(settings.many_streams), &settings.filters);
    if rows.is_empty() {
        return Err(format!("no row matches {:?}", settings.filters));
    }
    let start = Instant::now();
    let gateway = gateway_binary();
    let lab = Lab::start()?;
    let ssh_version = lab.ssh_version();
    let sshd_version = lab.sshd_version()?;

    let load_before = machine::load_average();
    let measuring = Instant::now();
    let samples = measure(&lab, &rows, &settings, |round, row| {
        eprintln!(
            "[{:>4} s] round {} of {}: {}",
            start.elapsed().as_secs(),
            round + 1,
            settings.rounds,
            row.name()
        );
    });
    let measured_for = measuring.elapsed();

    println!("gateway:  {}", gateway.display());
    println!(
        "libc:     {} (the gateway binary's)",
        procfs::libc_of(gateway)
    );
    println!(
        "cpu:      {} ({} logical CPUs; {})",
        machine::cpu_model(),
        machine::cpus(),
        machine::cpu_features()
    );
    println!("bench:    {}", machine::build());
    println!("ssh:      {ssh_version}");
    println!("sshd:     {sshd_version}");
    for note in &lab.notes {
        println!("note:     {note}");
    }
    println!(
        "load:     {load_before} before, {} after (1-minute load average; above 0 means \
         something else ran)",
        machine::load_average()
    );
    println!(
        "plan:     {} round(s), rows interleaved round-robin; each row moves {} MiB per \
         sample, split evenly among its streams; {} rows measured in {} s ({} s in all)",
        settings.rounds,
        settings.bytes_per_sample >> 20,
        rows.len(),
        measured_for.as_secs(),
        start.elapsed().as_secs()
    );
    println!(
        "memory:   VmHWM from /proc/PID/status; client: the client process; server: the \
         gateway serve process, or for sshd the sum over every process under the listening \
         sshd for the connection ({})",
        report::sshd_processes(&rows, &samples).unwrap_or_else(|| "none measured".to_owned())
    );
    println!();
    println!("{}", report::LEGEND);
    println!();
    print!("{}", report::table(&rows, &samples));
    Ok(())
}

/// The `gateway` binary: `GATEWAY_BIN`, or a release build made now, with a line every
/// 20 s while cargo works (`lto = "fat"` makes it take minutes).
fn gateway_binary() -> &'static std::path::Path {
    if std::env::var_os("GATEWAY_BIN").is_none() {
        eprintln!(
            "building the release gateway (cargo build --release -p gateway; lto = \"fat\", \
             so a few minutes unless it is up to date; GATEWAY_BIN=PATH skips this)"
        );
    }
    let done = AtomicBool::new(false);
    let started = Instant::now();
    thread::scope(|scope| {
        scope.spawn(|| {
            let mut next = Duration::from_secs(20);
            while !done.load(Ordering::Relaxed) {
                if started.elapsed() >= next {
                    eprintln!("  still building ({} s)", next.as_secs());
                    next += Duration::from_secs(20);
                }
                thread::sleep(Duration::from_millis(100));
            }
        });
        let path = interop::peers::gateway_binary();
        done.store(true, Ordering::Relaxed);
        path
    })
}
