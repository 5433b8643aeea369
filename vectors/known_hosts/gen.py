#!/usr/bin/env python3
"""Writes the known_hosts vectors from OpenSSH's own tools.

    python3 vectors/known_hosts/gen.py

rewrites every other file in this folder. Needs `ssh-keygen`, `ssh` and `sshd` from
OpenSSH on the PATH (or in /usr/sbin), and the right to run `sshd -i` (root, or the user
that owns the host keys). Nothing listens on a port: each `ssh` reaches a fresh
`sshd -i` through ProxyCommand, so any host name and port can be tried.

What it writes:

- `keys.txt`: the public keys used, one `label type base64` a line. The private halves
  are generated into a temporary folder and thrown away, so a rerun changes every file.
- `every-form.known_hosts`: a file with every line form of sshd(8), section
  SSH_KNOWN_HOSTS FILE FORMAT, malformed lines among them. Lines marked for hashing in
  the template below are hashed by `ssh-keygen -H`, not by us.
- `find.txt`: for a list of names, the lines `ssh-keygen -F NAME -l` reports and their
  markers (only lines whose key parses, as `-l` parses every key).
- `lookup.txt`: for a list of (host, port, server key), what `ssh` 's host key check
  decided: OK (known and matching), CHANGED (the loud warning), REVOKED or NEW (unknown),
  with StrictHostKeyChecking=yes. `expect` is the outcome our `lookup` must give; where it
  is not OpenSSH's own, `deviation` says why.
- `hashed.txt`: plain names and the `|1|salt|hash` that `ssh-keygen -H` wrote for them.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def tool(name):
    for candidate in (shutil.which(name), f"/usr/sbin/{name}"):
        if candidate and os.path.exists(candidate):
            return candidate
    sys.exit(f"{name} not found")


SSH_KEYGEN, SSH, SSHD = tool("ssh-keygen"), tool("ssh"), tool("sshd")

# label -> ssh-keygen arguments. ED4 appears only on the `@revoked *` line, ED5 only in
# the port-fallback revocation case, P384 is a type ssh-proto does not support.
KEYS = {
    "ED1": ["-t", "ed25519"],
    "ED2": ["-t", "ed25519"],
    "ED3": ["-t", "ed25519"],
    "ED4": ["-t", "ed25519"],
    "ED5": ["-t", "ed25519"],
    "RSA": ["-t", "rsa", "-b", "2048"],
    "ECDSA": ["-t", "ecdsa", "-b", "256"],
    "P384": ["-t", "ecdsa", "-b", "384"],
}

# `{LABEL}` is "type base64", `{LABEL_B64}` the base64 alone. A line starting with
# "HASH " is hashed by ssh-keygen -H (which writes one hashed line per name).
TEMPLATE = """\
# known_hosts vectors: every line form of sshd(8) SSH_KNOWN_HOSTS FILE FORMAT.
# Written by gen.py in this folder; the expected results come from OpenSSH's tools.

plain.example.com {ED1}
list-a.example.com,list-b.example.com,192.0.2.10 {ED2} a trailing comment
[port.example.com]:2222 {ED1}
[port.example.com]:2200,port.example.com {ECDSA}
*.wild.example.com {RSA}
host?.qmark.example.com {ED3}
*.neg.example.com,!bad.neg.example.com {ED1}
!bad2.neg.example.com,*.neg.example.com {ED2}
  \tindented.example.com\t{ED1}   # comment after tabs and spaces
UPPER.Example.COM {ED1}
HASH hashed.example.com {ED1}
HASH [hashedport.example.com]:2022 {ED2}
HASH hashed-a.example.com,hashed-b.example.com {ED3}
@revoked revoked.example.com {ED3}
revoked.example.com {ED3}
@revoked * {ED4}
@revoked rp.example.com {ED5}
rp.example.com {ED5}
@cert-authority *.ca.example.com {ED2}
changed.example.com {ED2}
other.example.com {RSA}
other.example.com {P384}
only384.example.com {P384}
multi.example.com {ED2}
multi.example.com {ED1}
#commented.example.com {ED1}

# Malformed lines: each is skipped with a warning.
bad-base64.example.com ssh-ed25519 AAAA!!!!{ED1_B64}
unknown-type.example.com ssh-foo {ED1_B64}
missing-key.example.com ssh-ed25519
missing-type.example.com
@bogus marker.example.com {ED1}
@revoked @revoked double.example.com {ED1}
|1|bm90IGEgc2FsdA==|bm90IGEgaGFzaA== {ED1}
type-mismatch.example.com ssh-rsa {ED1_B64}
"""

# (name, port) for ssh-keygen -F.
FIND_QUERIES = [
    ("plain.example.com", 22),
    ("PLAIN.EXAMPLE.COM", 22),
    ("list-b.example.com", 22),
    ("192.0.2.10", 22),
    ("port.example.com", 2222),
    ("port.example.com", 2200),
    ("port.example.com", 22),
    ("port.example.com", 2223),
    ("x.wild.example.com", 22),
    ("a.b.wild.example.com", 2222),
    ("wild.example.com", 22),
    ("host1.qmark.example.com", 22),
    ("host12.qmark.example.com", 22),
    ("ok.neg.example.com", 22),
    ("bad.neg.example.com", 22),
    ("bad2.neg.example.com", 22),
    ("indented.example.com", 22),
    ("upper.example.com", 22),
    ("hashed.example.com", 22),
    ("hashed.example.com", 2022),
    ("hashedport.example.com", 2022),
    ("hashedport.example.com", 22),
    ("hashed-b.example.com", 22),
    ("revoked.example.com", 22),
    ("anything.example.org", 22),
    ("x.ca.example.com", 22),
    ("other.example.com", 22),
    ("multi.example.com", 22),
    ("bad-base64.example.com", 22),
    ("missing-key.example.com", 22),
    ("type-mismatch.example.com", 22),
    ("commented.example.com", 22),
    ("nowhere.example.net", 22),
]

# (host, port, server key, our expected outcome, deviation or None).
LOOKUP_CASES = [
    ("plain.example.com", 22, "ED1", "Known", None),
    ("plain.example.com", 22, "ED2", "Changed", None),
    ("plain.example.com", 22, "RSA", "OtherTypesKnown", None),
    ("PLAIN.EXAMPLE.COM", 22, "ED1", "Known", None),
    ("nowhere.example.net", 22, "ED1", "Unknown", None),
    ("list-b.example.com", 22, "ED2", "Known", None),
    ("192.0.2.10", 22, "ED2", "Known", None),
    ("port.example.com", 2222, "ED1", "Known", None),
    ("port.example.com", 2200, "ECDSA", "Known", None),
    ("port.example.com", 22, "ECDSA", "Known", None),
    ("port.example.com", 2222, "ED2", "Changed", None),
    ("port.example.com", 2223, "ECDSA", "Known", None),
    ("port.example.com", 2223, "ED1", "Unknown", None),
    ("plain.example.com", 2022, "ED1", "Known", None),
    ("plain.example.com", 2022, "ED2", "Unknown", None),
    ("x.wild.example.com", 22, "RSA", "Known", None),
    ("x.wild.example.com", 22, "ED1", "OtherTypesKnown", None),
    ("wild.example.com", 22, "RSA", "Unknown", None),
    ("host1.qmark.example.com", 22, "ED3", "Known", None),
    ("host12.qmark.example.com", 22, "ED3", "Unknown", None),
    ("ok.neg.example.com", 22, "ED1", "Known", None),
    ("ok.neg.example.com", 22, "ED2", "Known", None),
    ("bad.neg.example.com", 22, "ED1", "Changed", None),
    ("bad.neg.example.com", 22, "ED2", "Known", None),
    ("bad2.neg.example.com", 22, "ED2", "Changed", None),
    ("bad2.neg.example.com", 22, "ED1", "Known", None),
    ("indented.example.com", 22, "ED1", "Known", None),
    ("upper.example.com", 22, "ED1", "Known", None),
    ("hashed.example.com", 22, "ED1", "Known", None),
    ("hashed.example.com", 22, "ED2", "Changed", None),
    ("hashedport.example.com", 2022, "ED2", "Known", None),
    ("hashedport.example.com", 22, "ED2", "Unknown", None),
    ("hashed-b.example.com", 22, "ED3", "Known", None),
    ("revoked.example.com", 22, "ED3", "Revoked", None),
    ("anything.example.org", 22, "ED4", "Revoked", None),
    ("plain.example.com", 22, "ED4", "Revoked", None),
    ("rp.example.com", 22, "ED5", "Revoked", None),
    (
        "rp.example.com",
        2022,
        "ED5",
        "Revoked",
        "ssh checks the portless name only for a matching key, warns that it is revoked "
        "and goes on as if the host were unknown; we refuse a revoked key outright",
    ),
    ("x.ca.example.com", 22, "ED2", "Unknown", None),
    ("changed.example.com", 22, "ED1", "Changed", None),
    ("other.example.com", 22, "ED1", "OtherTypesKnown", None),
    ("only384.example.com", 22, "ED1", "OtherTypesKnown", None),
    ("multi.example.com", 22, "ED1", "Known", None),
    ("multi.example.com", 22, "ED2", "Known", None),
    ("multi.example.com", 22, "ED3", "Changed", None),
    ("bad-base64.example.com", 22, "ED1", "Unknown", None),
    ("type-mismatch.example.com", 22, "ED1", "Unknown", None),
    ("commented.example.com", 22, "ED1", "Unknown", None),
]

# How OpenSSH words each outcome, and which of ours it is.
OPENSSH_CLASS = {
    "Known": "OK",
    "Changed": "CHANGED",
    "OtherTypesKnown": "CHANGED",
    "Revoked": "REVOKED",
    "Unknown": "NEW",
}


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, **kw)


def query_name(host, port):
    return host if port == 22 else f"[{host}]:{port}"


def make_keys(tmp):
    pub = {}
    for label, args in KEYS.items():
        path = os.path.join(tmp, label)
        run([SSH_KEYGEN, "-q", "-N", "", "-C", "", "-f", path, *args]).check_returncode()
        key_type, b64 = open(path + ".pub").read().split()[:2]
        pub[label] = (key_type, b64)
    return pub


def hash_lines(tmp, lines):
    """Hashes `lines` with ssh-keygen -H; returns the hashed lines in order."""
    path = os.path.join(tmp, "to-hash")
    with open(path, "w") as f:
        f.write("".join(line + "\n" for line in lines))
    run([SSH_KEYGEN, "-H", "-f", path]).check_returncode()
    return open(path).read().splitlines()


def build_file(tmp, pub):
    subst = {}
    for label, (key_type, b64) in pub.items():
        subst[label] = f"{key_type} {b64}"
        subst[label + "_B64"] = b64
    out, hashed = [], []
    for line in TEMPLATE.splitlines():
        line = line.format(**subst)
        if line.startswith("HASH "):
            plain = line[len("HASH ") :]
            lines = hash_lines(tmp, [plain])
            names = plain.split()[0].split(",")
            if len(lines) != len(names):
                sys.exit(f"ssh-keygen -H wrote {len(lines)} lines for {plain!r}")
            for name, hashed_line in zip(names, lines):
                hashed.append((name, hashed_line.split()[0]))
            out.extend(lines)
        else:
            out.append(line)
    return "".join(line + "\n" for line in out), hashed


FOUND = re.compile(r"^# Host (.*) found: line (\d+) ?(CA|REVOKED)?\s*$")


def find(path, host, port):
    name = query_name(host, port)
    result = run([SSH_KEYGEN, "-F", name, "-l", "-f", path])
    found = []
    for line in result.stdout.splitlines():
        m = FOUND.match(line)
        if m:
            marker = {"CA": "cert-authority", "REVOKED": "revoked"}.get(m.group(3), "none")
            found.append(f"{m.group(2)}:{marker}")
    return found


def openssh_outcome(tmp, path, host, port, label):
    conf = os.path.join(tmp, "sshd_config")
    with open(conf, "w") as f:
        f.write(f"HostKey {os.path.join(tmp, label)}\nUsePAM no\nPidFile none\n")
    sshd = f"{SSHD} -i -f {conf}"
    result = run(
        [
            SSH,
            "-F", "/dev/null",
            "-o", f"ProxyCommand={sshd}",
            "-o", f"UserKnownHostsFile={path}",
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes",
            "-o", "CheckHostIP=no",
            "-o", "UpdateHostKeys=no",
            "-o", "PubkeyAuthentication=no",
            "-o", "PasswordAuthentication=no",
            "-o", "KbdInteractiveAuthentication=no",
            "-p", str(port),
            f"nobody@{host}",
            "true",
        ],
        timeout=30,
    )
    err = result.stderr
    if "REVOKED HOST KEY" in err:
        outcome = "REVOKED"
    elif "REMOTE HOST IDENTIFICATION HAS CHANGED" in err:
        outcome = "CHANGED"
    elif "host key is known for" in err:
        outcome = "NEW"
    elif "Permission denied" in err:
        outcome = "OK"
    else:
        sys.exit(f"cannot classify ssh's answer for {host}:{port} {label}:\n{err}")
    # ssh's second, portless try reports a revoked key and then treats the host as new.
    if outcome == "REVOKED" and "host key is known for" in err:
        outcome = "NEW after a REVOKED warning"
    return outcome


def main():
    with tempfile.TemporaryDirectory() as tmp:
        pub = make_keys(tmp)
        text, hashed = build_file(tmp, pub)
        path = os.path.join(HERE, "every-form.known_hosts")
        with open(path, "w") as f:
            f.write(text)

        with open(os.path.join(HERE, "keys.txt"), "w") as f:
            f.write("# label type base64: the public keys in every-form.known_hosts\n")
            for label, (key_type, b64) in pub.items():
                f.write(f"{label} {key_type} {b64}\n")

        with open(os.path.join(HERE, "hashed.txt"), "w") as f:
            f.write("# name = the plain name, hashed = what `ssh-keygen -H` wrote for it\n")
            for name, h in hashed:
                f.write(f"\nname = {name}\nhashed = {h}\n")

        with open(os.path.join(HERE, "find.txt"), "w") as f:
            f.write(
                "# lines = what `ssh-keygen -F NAME -l -f every-form.known_hosts` found,\n"
                "# as line:marker, in file order; empty when nothing matched\n"
            )
            for host, port in FIND_QUERIES:
                found = find(path, host, port)
                f.write(f"\nhost = {host}\nport = {port}\nlines = {' '.join(found)}\n")

        with open(os.path.join(HERE, "lookup.txt"), "w") as f:
            f.write(
                "# openssh = what ssh's host key check decided (OK, CHANGED, REVOKED, NEW)\n"
                "# with this file as known_hosts and a server holding the `key` of keys.txt;\n"
                "# expect = the HostKeyStatus our lookup must return\n"
            )
            for host, port, label, expect, deviation in LOOKUP_CASES:
                outcome = openssh_outcome(tmp, path, host, port, label)
                if deviation is None and outcome != OPENSSH_CLASS[expect]:
                    sys.exit(f"{host}:{port} {label}: ssh says {outcome}, we expect {expect}")
                f.write(f"\nhost = {host}\nport = {port}\nkey = {label}\n")
                f.write(f"openssh = {outcome}\nexpect = {expect}\n")
                if deviation is not None:
                    f.write(f"deviation = {deviation}\n")


if __name__ == "__main__":
    main()
