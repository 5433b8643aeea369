#!/usr/bin/env bash
# The project's one test command: installs the interop peers, then checks formatting and
# lints, runs every test (interop included), the pure-Rust crypto provider alone, and each
# fuzz target for 30 seconds. Stops at the first failure with a non-zero exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export RUST_BACKTRACE=1

start=$SECONDS
scratch=$(mktemp -d)
section() { printf '\n=== %s   [%ds elapsed]\n' "$*" $((SECONDS - start)); }
on_exit() {
    local status=$?
    rm -rf "$scratch"
    [[ $status == 0 ]] || printf '\n=== FAILED (exit %d) after %ds\n' "$status" $((SECONDS - start))
}
trap on_exit EXIT

section "install interop peers"
bash tests/install-peers.sh
# shellcheck source=/dev/null
. "${PEERS_DIR:-target/peers}/env.sh"

section "cargo fmt --check"
cargo fmt --all --check

section "cargo clippy"
cargo clippy --workspace --all-targets --all-features -- -D warnings

section "cargo test (workspace, all features)"
cargo test --workspace --all-features

section "cargo test (ssh-proto, pure-Rust provider alone)"
cargo test -p ssh-proto --no-default-features --features rustcrypto

if [[ -f fuzz/Cargo.toml ]]; then
    # cargo-fuzz runs on stable Rust when no sanitizer is asked for (-s none). New inputs go
    # to a scratch folder so a run never changes the work tree; committed seeds in
    # fuzz/corpus/TARGET are read, and crashes land in fuzz/artifacts/TARGET.
    targets=$(cd fuzz && cargo fuzz list)
    for target in $targets; do
        section "cargo fuzz run $target (30 s)"
        mkdir -p "$scratch/$target"
        seeds=()
        [[ -d fuzz/corpus/$target ]] && seeds=("corpus/$target")
        (cd fuzz && cargo fuzz run -s none "$target" "$scratch/$target" "${seeds[@]}" \
            -- -max_total_time=30)
    done
fi

section "all checks passed"
