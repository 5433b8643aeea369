#!/usr/bin/env bash
# Installs the real SSH implementations that the interop tests run against, and writes
# $PEERS_DIR/env.sh with their paths. Safe to run again: it only does what is missing, and
# returns in about a second when everything is there.
#
# Expects Debian 12 (bookworm) and root (or sudo) for the apt steps. PEERS_DIR defaults to
# <repo>/target/peers.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PEERS_DIR=${PEERS_DIR:-$repo/target/peers}

# iproute2: the network namespace with a black hole in serve_peers.rs.
apt_packages=(openssh-server openssh-client dropbear-bin putty-tools iperf3 python3-venv iproute2)
# OpenSSH 10.0 is the post-quantum default peer. It comes from bookworm-backports and is
# only unpacked, so the system keeps OpenSSH 9.2 as the other peer.
openssh_100_version='1:10.0p1-7~bpo12+1'
openssh_100_packages=(openssh-server openssh-client openssh-sftp-server)
openssh_100_dir=$PEERS_DIR/openssh-10.0
# Debian's own asyncssh and ssh-audit predate strict kex, so these come from PyPI.
python_requirements=('asyncssh>=2.24' 'paramiko>=5,<6' 'ssh-audit>=3.9')
venv=$PEERS_DIR/venv

log() { printf 'install-peers: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}
as_root() {
    if [[ $(id -u) == 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        die "root is needed to run: $*"
    fi
}
apt_get() { as_root env DEBIAN_FRONTEND=noninteractive apt-get -q -y "$@"; }
installed() { [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == 'install ok installed' ]]; }

# Prints the mirror URI and keyring of the main bookworm entry of the existing sources, as
# "URI KEYRING" (KEYRING may be empty), so backports come from the same mirror.
debian_mirror() {
    local file
    for file in /etc/apt/sources.list.d/*.sources; do
        [[ -e $file ]] || continue
        # deb822: stanzas separated by blank lines; keep the first one whose Suites has
        # plain "bookworm".
        awk -v RS= '
            /(^|\n)Suites:([^\n]* )?bookworm( |\n|$)/ {
                uri = ""; key = ""
                n = split($0, lines, "\n")
                for (i = 1; i <= n; i++) {
                    if (lines[i] ~ /^URIs:/) { split(lines[i], f, " "); uri = f[2] }
                    if (lines[i] ~ /^Signed-By:/) { split(lines[i], f, " "); key = f[2] }
                }
                if (uri != "") { print uri, key; exit }
            }' "$file"
    done | head -n 1 | grep . && return
    # One-line format: "deb [options] URI bookworm components".
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
        awk '$1 == "deb" { sub(/^deb +(\[[^]]*\] +)?/, ""); if ($2 == "bookworm") { print $1; exit } }' |
        grep .
}

add_backports_source() {
    if grep -qs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
        /etc/apt/sources.list.d/*.sources; then
        return
    fi
    local mirror uri key
    mirror=$(debian_mirror) || die "found no bookworm entry in the apt sources to copy a mirror from"
    read -r uri key <<<"$mirror"
    key=${key:-/usr/share/keyrings/debian-archive-keyring.gpg}
    log "adding bookworm-backports from $uri"
    printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' \
        "$uri" "$key" | as_root tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null
}

# The extracted OpenSSH 10.0 binaries, for the library check.
openssh_100_binaries() {
    find "$openssh_100_dir/usr/bin" "$openssh_100_dir/usr/sbin" "$openssh_100_dir/usr/lib/openssh" \
        -type f -perm -u+x 2>/dev/null
}
# Prints the libraries that the extracted binaries need and this system lacks.
openssh_100_missing_libs() {
    local bin
    openssh_100_binaries | while read -r bin; do
        ldd "$bin" 2>&1 | grep 'not found' || true
    done | sort -u
}

# Picks the OpenSSH 10 version to fetch: the pinned one, else the newest 10.x in backports.
pick_openssh_100_version() {
    local pkg versions best=''
    for pkg in "${openssh_100_packages[@]}"; do
        if ! apt-cache madison "$pkg" | awk -F' *[|] *' '{print $2}' | grep -qxF "$openssh_100_version"; then
            versions=$(apt-cache madison openssh-server | awk -F' *[|] *' '$3 ~ /backports/ && $2 ~ /^1:10\./ {print $2}')
            for v in $versions; do
                if [[ -z $best ]] || dpkg --compare-versions "$v" gt "$best"; then best=$v; fi
            done
            [[ -n $best ]] || die "bookworm-backports has no OpenSSH 10.x"
            log "OpenSSH $openssh_100_version is gone from backports; taking $best instead"
            openssh_100_version=$best
            return
        fi
    done
}

fetch_openssh_100() {
    pick_openssh_100_version
    local tmp pkg
    tmp=$(mktemp -d)
    # apt-get download drops privileges to _apt, which must be able to write here.
    chmod 777 "$tmp"
    (cd "$tmp" && apt-get -q download "${openssh_100_packages[@]/%/=$openssh_100_version}")
    rm -rf "$openssh_100_dir.new"
    for pkg in "$tmp"/*.deb; do
        dpkg -x "$pkg" "$openssh_100_dir.new"
    done
    # Library packages that the binaries depend on, for install_openssh_100_libs.
    for pkg in "$tmp"/*.deb; do
        dpkg-deb -f "$pkg" Depends
    done | tr ',' '\n' | sed -E 's/^ *//; s/[ (|].*//' | grep '^lib' | sort -u \
        >"$openssh_100_dir.new/.lib-packages"
    echo "$openssh_100_version" >"$openssh_100_dir.new/.version"
    rm -rf "$tmp" "$openssh_100_dir"
    mv "$openssh_100_dir.new" "$openssh_100_dir"
}

# Installs the library packages the 10.0 binaries need that are not installed, from
# bookworm when it has them and from backports otherwise. Never touches openssh-* itself.
install_openssh_100_libs() {
    local pkg wanted=()
    while read -r pkg; do
        installed "$pkg" && continue
        if apt-cache madison "$pkg" | grep -v backports | grep -q .; then
            wanted+=("$pkg")
        else
            wanted+=("$pkg/bookworm-backports")
        fi
    done <"$openssh_100_dir/.lib-packages"
    [[ ${#wanted[@]} -gt 0 ]] || die "OpenSSH 10.0 lacks libraries that no dependency names: $(openssh_100_missing_libs)"
    log "installing libraries for OpenSSH 10.0: ${wanted[*]}"
    apt_get install --no-install-recommends "${wanted[@]}"
}

# Installs the apt packages while keeping their services from starting: the tests start
# their own servers on free loopback ports and need nothing on port 22.
install_apt_packages() {
    local policy=/usr/sbin/policy-rc.d
    if [[ -e $policy ]]; then
        apt_get install --no-install-recommends "$@"
        return
    fi
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod 755 "$policy"
    local status=0
    apt_get install --no-install-recommends "$@" || status=$?
    as_root rm -f "$policy"
    return "$status"
}

# --- apt packages and the OpenSSH 10.0 download share one apt-get update ---
missing=()
for pkg in "${apt_packages[@]}"; do
    installed "$pkg" || missing+=("$pkg")
done
need_openssh_100=false
[[ -x $openssh_100_dir/usr/sbin/sshd && -s $openssh_100_dir/.version ]] || need_openssh_100=true

if [[ ${#missing[@]} -gt 0 ]] || $need_openssh_100; then
    $need_openssh_100 && add_backports_source
    log "apt-get update"
    apt_get update
fi
if [[ ${#missing[@]} -gt 0 ]]; then
    log "installing ${missing[*]}"
    install_apt_packages "${missing[@]}"
fi
mkdir -p "$PEERS_DIR"
if $need_openssh_100; then
    log "fetching OpenSSH 10.0 from bookworm-backports into $openssh_100_dir"
    fetch_openssh_100
fi
if [[ -n $(openssh_100_missing_libs) ]]; then
    install_openssh_100_libs
    [[ -z $(openssh_100_missing_libs) ]] || die "OpenSSH 10.0 still lacks: $(openssh_100_missing_libs)"
fi

# --- Python peers ---
# True when the venv has every requirement (ten times faster than asking pip).
venv_ready() {
    [[ -x $venv/bin/python ]] && "$venv/bin/python" - "${python_requirements[@]}" 2>/dev/null <<'PY'
import sys, importlib.metadata as md
from pip._vendor.packaging.requirements import Requirement
for spec in sys.argv[1:]:
    req = Requirement(spec)
    if not req.specifier.contains(md.version(req.name), prereleases=True):
        sys.exit(1)
PY
}
if ! venv_ready; then
    log "creating $venv with ${python_requirements[*]}"
    # Debian's python3, which python3-venv belongs to, whatever python3 is first in PATH.
    /usr/bin/python3 -m venv --clear "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "${python_requirements[@]}"
fi

# --- cargo-fuzz ---
if ! cargo fuzz --version >/dev/null 2>&1; then
    log "cargo install cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# --- env.sh: the paths the tests read ---
peer_paths=(
    "SSHD_92=/usr/sbin/sshd"
    "SSH_92=/usr/bin/ssh"
    "SSHD_100=$openssh_100_dir/usr/sbin/sshd"
    "SSH_100=$openssh_100_dir/usr/bin/ssh"
    "SSHD_100_LIBEXEC=$openssh_100_dir/usr/lib/openssh"
    "DROPBEAR=/usr/sbin/dropbear"
    "DBCLIENT=/usr/bin/dbclient"
    "DROPBEARKEY=/usr/bin/dropbearkey"
    "DROPBEARCONVERT=/usr/lib/dropbear/dropbearconvert"
    "PLINK=/usr/bin/plink"
    "PUTTYGEN=/usr/bin/puttygen"
    "IPERF3=/usr/bin/iperf3"
    "PEER_PYTHON=$venv/bin/python"
    "SSH_AUDIT=$venv/bin/ssh-audit"
    "SSH_KEYGEN=/usr/bin/ssh-keygen"
)
{
    echo "# Written by tests/install-peers.sh: paths of the interop peers."
    printf 'export PEERS_DIR=%q\n' "$PEERS_DIR"
    for entry in "${peer_paths[@]}"; do
        [[ -e ${entry#*=} ]] || die "${entry%%=*}: ${entry#*=} is missing after install"
        printf 'export %s=%q\n' "${entry%%=*}" "${entry#*=}"
    done
} >"$PEERS_DIR/env.sh.new"
mv "$PEERS_DIR/env.sh.new" "$PEERS_DIR/env.sh"
# shellcheck source=/dev/null
. "$PEERS_DIR/env.sh"

first_line() { "$@" 2>&1 | head -n 1; }
python_version() { "$PEER_PYTHON" -c "import importlib.metadata as m; print('$1', m.version('$1'))"; }
printf '%-18s %s\n' \
    'OpenSSH 9.2:' "$(first_line "$SSH_92" -V)" \
    'OpenSSH 10.0:' "$(first_line "$SSH_100" -V)" \
    'Dropbear:' "$(first_line "$DROPBEAR" -V)" \
    'PuTTY:' "$(first_line "$PLINK" -V)" \
    'iperf3:' "$(first_line "$IPERF3" --version)" \
    'asyncssh:' "$(python_version asyncssh)" \
    'paramiko:' "$(python_version paramiko)" \
    'ssh-audit:' "$(python_version ssh-audit)" \
    'cargo-fuzz:' "$(cargo fuzz --version)"
log "peers ready; env: $PEERS_DIR/env.sh"
