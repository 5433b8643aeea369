//! What the system says about the processes and the binary under test: a process's
//! descendants and name from `/proc`, and which libc an executable was linked against,
//! from its ELF program headers.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

pub use interop::forwarding::{cpu_ticks, memory_kib};

/// Clock ticks per second, the unit of [`cpu_ticks`] (`sysconf(_SC_CLK_TCK)`, which is
/// 100 on every Linux configuration this runs on).
pub const TICKS_PER_SECOND: f64 = 100.0;

/// The peak resident memory (VmHWM) of a process, in KiB; 0 once it has exited.
pub fn peak_kib(pid: u32) -> u64 {
    memory_kib(pid).1
}

/// The process's command name (`/proc/PID/comm`), such as `sshd-session`.
pub fn command_name(pid: u32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| format!("pid {pid} (gone)"))
}

/// Every process below `pid`: its children, their children and so on, in no set order.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some(parent) = parent_of(child) {
            children.entry(parent).or_default().push(child);
        }
    }
    let mut found = Vec::new();
    let mut next = vec![pid];
    while let Some(p) = next.pop() {
        for &child in children.get(&p).into_iter().flatten() {
            found.push(child);
            next.push(child);
        }
    }
    found
}

/// The parent of a process, from `/proc/PID/stat`; `None` once it has exited.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may hold anything.
    let (_, rest) = stat.rsplit_once(')')?;
    // State, then the parent's pid (fields 3 and 4 of proc_pid_stat(5)).
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Which libc the executable at `path` uses: the dynamic loader it names, or for a static
/// binary whether glibc's symbol versions are in it.
pub fn libc_of(path: &Path) -> String {
    let Ok(bytes) = fs::read(path) else {
        return format!("unknown ({} cannot be read)", path.display());
    };
    match interpreter(&bytes) {
        Some(loader) if loader.contains("musl") => format!("musl (dynamically linked, {loader})"),
        Some(loader) if loader.contains("ld-linux") => {
            format!("glibc (dynamically linked, {loader})")
        }
        Some(loader) => format!("unknown (dynamically linked, {loader})"),
        None if contains(&bytes, b"GLIBC_2.") => "glibc (statically linked)".to_owned(),
        None => "musl or another libc (statically linked, no glibc symbol versions)".to_owned(),
    }
}

/// The program interpreter (`PT_INTERP`) of a 64-bit little-endian ELF file, if it has one.
fn interpreter(elf: &[u8]) -> Option<String> {
    const PT_INTERP: u32 = 3;
    if elf.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let u16_at = |at: usize| Some(u16::from_le_bytes(elf.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(elf.get(at..at + 4)?.try_into().ok()?));
    let u64_at = |at: usize| {
        let value = u64::from_le_bytes(elf.get(at..at + 8)?.try_into().ok()?);
        usize::try_from(value).ok()
    };
    // e_phoff, e_phentsize and e_phnum of the ELF-64 header.
    let table = u64_at(0x20)?;
    let (entry_size, entries) = (usize::from(u16_at(0x36)?), usize::from(u16_at(0x38)?));
    (0..entries).find_map(|i| {
        let header = table.checked_add(i.checked_mul(entry_size)?)?;
        if u32_at(header)? != PT_INTERP {
            return None;
        }
        // p_offset and p_filesz of the ELF-64 program header.
        let (offset, size) = (u64_at(header + 8)?, u64_at(header + 32)?);
        let name = elf.get(offset..offset.checked_add(size)?)?;
        let name = name.split(|&b| b == 0).next()?;
        Some(String::from_utf8_lossy(name).into_owned())
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_test_binary_has_the_libc_it_was_built_for() {
        let me = std::env::current_exe().unwrap();
        let libc = libc_of(&me);
        if cfg!(target_env = "gnu") {
            assert!(libc.starts_with("glibc"), "{libc}");
        } else if cfg!(target_env = "musl") {
            assert!(libc.starts_with("musl"), "{libc}");
        }
    }

    #[test]
    fn not_an_elf_file_has_no_interpreter() {
        assert_eq!(interpreter(b"#!/bin/sh\n"), None);
        assert_eq!(interpreter(b"\x7fELF\x02\x01"), None);
    }

    #[test]
    fn this_process_is_below_its_parent() {
        let parent = parent_of(std::process::id()).unwrap();
        assert!(descendants(parent).contains(&std::process::id()));
    }
}
