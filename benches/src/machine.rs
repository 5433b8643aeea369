//! What a benchmark report says about the machine it ran on: the libc, the CPU and its
//! relevant features, the build, and how busy the machine was.
//!
//! The libc matters here because glibc's `memcpy` is slow for 32 KiB copies on some AMD
//! processors, and a 32 KiB copy is exactly what a careless packet path does per packet.

use std::fs;

/// The libc the binary was built against, decided at build time by the target.
pub fn libc() -> &'static str {
    if cfg!(target_env = "gnu") {
        "glibc (target_env=gnu)"
    } else if cfg!(target_env = "musl") {
        "musl (target_env=musl)"
    } else {
        "neither glibc nor musl"
    }
}

/// The CPU's model name from /proc/cpuinfo, or "unknown" where there is none.
pub fn cpu_model() -> String {
    fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The CPU features the AES-GCM, ChaCha20 and SHA-2 code paths choose between at run time.
pub fn cpu_features() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        let features = [
            ("aes", std::arch::is_x86_feature_detected!("aes")),
            (
                "pclmulqdq",
                std::arch::is_x86_feature_detected!("pclmulqdq"),
            ),
            ("avx2", std::arch::is_x86_feature_detected!("avx2")),
            ("vaes", std::arch::is_x86_feature_detected!("vaes")),
            (
                "vpclmulqdq",
                std::arch::is_x86_feature_detected!("vpclmulqdq"),
            ),
            ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
            ("sha", std::arch::is_x86_feature_detected!("sha")),
        ];
        let present: Vec<&str> = features
            .iter()
            .filter(|(_, on)| *on)
            .map(|(name, _)| *name)
            .collect();
        present.join(" ")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        "not probed on this architecture".to_owned()
    }
}

/// The logical CPUs this process may use.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The 1-minute load average, which says whether something else was running.
pub fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The build the figures came from: a debug build's figures mean nothing.
pub fn build() -> &'static str {
    if cfg!(debug_assertions) {
        "DEBUG (debug assertions on; these figures are not meaningful)"
    } else {
        "optimised (debug assertions off)"
    }
}
