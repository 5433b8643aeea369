#!/usr/bin/env python3
"""Writes the recorded handshake vectors, computed independently of ssh-proto.

    python3 vectors/gen/handshake.py

rewrites vectors/handshake-curve25519-sha256.txt and
vectors/handshake-mlkem768x25519-sha256.txt. Needs Python 3.9 or later and the
`cryptography` package (X25519, Ed25519, AES-GCM, AES-CTR; ML-KEM-768 only to cross-check
the small ML-KEM written here, which exists because `cryptography` does not encapsulate
with a caller-chosen message).

What it models: the in-memory pair of `ssh_proto::sim` driving our client and server
through a first key exchange with strict kex, then one SERVICE_REQUEST and one
SERVICE_ACCEPT under the new keys. Both sides draw from `sim::SeededRng` (SplitMix64)
seeded as `sim::Pair::new` seeds them, in the order the transport draws: the KEXINIT
cookie when the connection starts, the key exchange secret when it is needed (client: 96
bytes on the server's KEXINIT, server: 64 bytes on KEX_ECDH_INIT), and the padding bytes
for the new keys right after its own NEWKEYS. Everything else here comes from the RFCs,
not from the Rust code: the exchange hash and key derivation (RFC 4253 sections 7.2 and
8, RFC 5656 section 4), K as an mpint (RFC 8731 section 3.1) or, for the hybrid, the
SHA-256 of both secrets as a string (draft-ietf-sshm-mlkem-hybrid-kex), binary packets
(RFC 4253 section 6), AES-GCM (RFC 5647 as OpenSSH's PROTOCOL section 1.6 adapts it),
AES-CTR with HMAC (RFC 4344, RFC 6668), EXT_INFO (RFC 8308) and strict kex's sequence
number reset (OpenSSH PROTOCOL section 1.10).
"""

import hashlib
import hmac
import os
import struct
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import mlkem
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VECTORS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MASK64 = (1 << 64) - 1

# Message numbers, RFC 4250 section 4.1.2, RFC 8308 section 2.3, RFC 5656 section 7.1.
SERVICE_REQUEST, SERVICE_ACCEPT, EXT_INFO = 5, 6, 7
KEXINIT, NEWKEYS, KEX_ECDH_INIT, KEX_ECDH_REPLY = 20, 21, 30, 31

# The signature algorithms the server lists in server-sig-algs.
SERVER_SIG_ALGS = "ssh-ed25519,ecdsa-sha2-nistp256,rsa-sha2-512,rsa-sha2-256"


class SplitMix64:
    """The generator of `sim::SeededRng`: 8 little-endian bytes per step, the last step's
    extra bytes thrown away."""

    def __init__(self, seed):
        self.state = seed & MASK64

    def next_u64(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def fill(self, n):
        out = b""
        while len(out) < n:
            out += self.next_u64().to_bytes(8, "little")[: n - len(out)]
        return out


# RFC 4251 section 5 encodings.
def u32(n):
    return struct.pack(">I", n)


def string(b):
    return u32(len(b)) + b


def name_list(names):
    return string(",".join(names).encode())


def mpint(magnitude):
    n = int.from_bytes(magnitude, "big")
    return string(n.to_bytes((n.bit_length() + 8) // 8, "big") if n else b"")


def sha256(*parts):
    return hashlib.sha256(b"".join(parts)).digest()


# ML-KEM-768 (FIPS 203): key generation and encapsulation only, written from the
# standard's algorithms 7 to 17 and checked below against `cryptography` and a NIST ACVP
# record.
Q, N, K_RANK, ETA, DU, DV = 3329, 256, 3, 2, 10, 4


def bitrev7(i):
    return int(f"{i:07b}"[::-1], 2)


ZETAS = [pow(17, bitrev7(i), Q) for i in range(128)]
GAMMAS = [pow(17, 2 * bitrev7(i) + 1, Q) for i in range(128)]


def ntt(f):
    f, i, length = list(f), 1, 128
    while length >= 2:
        for start in range(0, N, 2 * length):
            zeta, i = ZETAS[i], i + 1
            for j in range(start, start + length):
                t = zeta * f[j + length] % Q
                f[j + length] = (f[j] - t) % Q
                f[j] = (f[j] + t) % Q
        length //= 2
    return f


def ntt_inverse(f):
    f, i, length = list(f), 127, 2
    while length <= 128:
        for start in range(0, N, 2 * length):
            zeta, i = ZETAS[i], i - 1
            for j in range(start, start + length):
                t = f[j]
                f[j] = (t + f[j + length]) % Q
                f[j + length] = zeta * (f[j + length] - t) % Q
        length *= 2
    return [x * 3303 % Q for x in f]


def ntt_mul(f, g):
    h = [0] * N
    for i in range(128):
        a0, a1, b0, b1 = f[2 * i], f[2 * i + 1], g[2 * i], g[2 * i + 1]
        h[2 * i] = (a0 * b0 + a1 * b1 * GAMMAS[i]) % Q
        h[2 * i + 1] = (a0 * b1 + a1 * b0) % Q
    return h


def poly_add(*polys):
    return [sum(c) % Q for c in zip(*polys)]


def sample_ntt(seed):
    stream = hashlib.shake_128(seed).digest(1344)
    out, pos = [], 0
    while len(out) < N:
        if pos + 3 > len(stream):
            stream = hashlib.shake_128(seed).digest(2 * len(stream))
        c0, c1, c2 = stream[pos : pos + 3]
        pos += 3
        for d in (c0 + 256 * (c1 % 16), c1 // 16 + 16 * c2):
            if d < Q and len(out) < N:
                out.append(d)
    return out


def sample_cbd(seed, nonce):
    data = hashlib.shake_256(seed + bytes([nonce])).digest(64 * ETA)
    bits = [(data[i // 8] >> (i % 8)) & 1 for i in range(8 * len(data))]
    out = []
    for i in range(N):
        at = 2 * i * ETA
        out.append((sum(bits[at : at + ETA]) - sum(bits[at + ETA : at + 2 * ETA])) % Q)
    return out


def byte_encode(f, d):
    bits = [(c >> b) & 1 for c in f for b in range(d)]
    return bytes(sum(bits[i + b] << b for b in range(8)) for i in range(0, len(bits), 8))


def byte_decode(data, d):
    bits = [(data[i // 8] >> (i % 8)) & 1 for i in range(8 * len(data))]
    m = Q if d == 12 else 1 << d
    return [sum(bits[i * d + b] << b for b in range(d)) % m for i in range(N)]


def compress(x, d):
    return ((x << d) + Q // 2) // Q % (1 << d)


def decompress(y, d):
    return (y * Q + (1 << (d - 1))) >> d


def matrix(rho):
    return [[sample_ntt(rho + bytes([j, i])) for j in range(K_RANK)] for i in range(K_RANK)]


def mlkem_keygen(d):
    """K-PKE.KeyGen (algorithm 13): returns the encapsulation key; ML-KEM.KeyGen_internal
    (algorithm 16) adds nothing to it."""
    g = hashlib.sha3_512(d + bytes([K_RANK])).digest()
    rho, sigma = g[:32], g[32:]
    a = matrix(rho)
    s = [ntt(sample_cbd(sigma, i)) for i in range(K_RANK)]
    e = [ntt(sample_cbd(sigma, K_RANK + i)) for i in range(K_RANK)]
    t = [poly_add(*(ntt_mul(a[i][j], s[j]) for j in range(K_RANK)), e[i]) for i in range(K_RANK)]
    return b"".join(byte_encode(ti, 12) for ti in t) + rho


def mlkem_encaps(ek, m):
    """ML-KEM.Encaps_internal (algorithm 17) with K-PKE.Encrypt (algorithm 14)."""
    g = hashlib.sha3_512(m + hashlib.sha3_256(ek).digest()).digest()
    shared, r = g[:32], g[32:]
    t = [byte_decode(ek[384 * i : 384 * (i + 1)], 12) for i in range(K_RANK)]
    a = matrix(ek[384 * K_RANK :])
    y = [ntt(sample_cbd(r, i)) for i in range(K_RANK)]
    e1 = [sample_cbd(r, K_RANK + i) for i in range(K_RANK)]
    e2 = sample_cbd(r, 2 * K_RANK)
    u = [
        poly_add(ntt_inverse(poly_add(*(ntt_mul(a[j][i], y[j]) for j in range(K_RANK)))), e1[i])
        for i in range(K_RANK)
    ]
    mu = [decompress(b, 1) for b in byte_decode(m, 1)]
    v = poly_add(ntt_inverse(poly_add(*(ntt_mul(t[i], y[i]) for i in range(K_RANK)))), e2, mu)
    c1 = b"".join(byte_encode([compress(x, DU) for x in ui], DU) for ui in u)
    c2 = byte_encode([compress(x, DV) for x in v], DV)
    return c1 + c2, shared


def check_mlkem():
    """The ML-KEM above must agree with an ACVP record and with OpenSSL."""
    records, current = [], {}
    with open(os.path.join(VECTORS, "mlkem768-kat.txt")) as f:
        for line in f:
            line = line.strip()
            if line.startswith("#"):
                continue
            if not line:
                if current:
                    records.append(current)
                current = {}
                continue
            key, value = (x.strip() for x in line.split("=", 1))
            current[key] = value
    if current:
        records.append(current)
    checked = 0
    for r in records:
        if r["kind"] == "keygen":
            d, z = bytes.fromhex(r["d"]), bytes.fromhex(r["z"])
            assert mlkem_keygen(d) == bytes.fromhex(r["ek"]), "ML-KEM keygen disagrees with ACVP"
            checked += 1
        elif r["kind"] == "encaps":
            c, k = mlkem_encaps(bytes.fromhex(r["ek"]), bytes.fromhex(r["m"]))
            expected = bytes.fromhex(r["c"]), bytes.fromhex(r["k"])
            assert (c, k) == expected, "ML-KEM encaps disagrees with ACVP"
            checked += 1
    assert checked >= 2, "no ML-KEM known answers found"

    d, z, m = bytes(range(32)), bytes(range(32, 64)), bytes(range(64, 96))
    theirs = mlkem.MLKEM768PrivateKey.from_seed_bytes(d + z)
    ek = mlkem_keygen(d)
    assert ek == theirs.public_key().public_bytes_raw(), "ML-KEM keygen disagrees with OpenSSL"
    c, k = mlkem_encaps(ek, m)
    assert theirs.decapsulate(c) == k, "ML-KEM encaps disagrees with OpenSSL"


class Sealer:
    """One direction's binary packets (RFC 4253 section 6)."""

    def __init__(self):
        self.seq = 0
        self.mode = "plain"
        self.pad = bytes(255)

    def install(self, cipher, mac, iv, key, mac_key, pad):
        self.mode, self.pad = cipher, pad
        if cipher == "aes128-gcm@openssh.com":
            self.gcm, self.nonce = AESGCM(key), iv
        else:
            assert cipher == "aes128-ctr" and mac == "hmac-sha2-256", cipher
            self.ctr = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
            self.mac_key = mac_key

    def seal(self, payload):
        block = 8 if self.mode == "plain" else 16
        # With GCM the length field is associated data, outside the padded blocks.
        aligned = 1 + len(payload) + (0 if self.mode == "aes128-gcm@openssh.com" else 4)
        pad_len = block - aligned % block
        if pad_len < 4:
            pad_len += block
        body = bytes([pad_len]) + payload + self.pad[:pad_len]
        length = u32(len(body))
        seq, self.seq = self.seq, (self.seq + 1) & 0xFFFFFFFF
        if self.mode == "plain":
            return length + body
        if self.mode == "aes128-gcm@openssh.com":
            sealed = self.gcm.encrypt(self.nonce, body, length)
            # RFC 5647 section 7.1: the invocation counter is the nonce's low 64 bits.
            counter = (int.from_bytes(self.nonce[4:], "big") + 1) & MASK64
            self.nonce = self.nonce[:4] + counter.to_bytes(8, "big")
            return length + sealed
        tag = hmac.new(self.mac_key, u32(seq) + length + body, hashlib.sha256).digest()
        return self.ctr.update(length + body) + tag


def kexinit(cookie, kex, host_key, ciphers, macs):
    return (
        bytes([KEXINIT])
        + cookie
        + name_list(kex)
        + name_list(host_key)
        + name_list(ciphers) * 2
        + name_list(macs) * 2
        + name_list(["none"]) * 2
        + name_list([]) * 2
        + b"\x00"
        + u32(0)
    )


def derive(k, h, letter, session_id, length):
    """RFC 4253 section 7.2, extended by HASH(K || H || key so far) while too short."""
    out = sha256(k, h, letter.encode(), session_id)
    while len(out) < length:
        out += sha256(k, h, out)
    return out[:length]


KEY_LENS = {"aes128-gcm@openssh.com": (12, 16), "aes128-ctr": (16, 16)}
MAC_LENS = {None: 0, "hmac-sha2-256": 32}


def choose(client, server):
    """RFC 4253 section 7.1: the client's first algorithm that the server also offers."""
    return next(name for name in client if name in server)


def handshake(case):
    assert choose(case["client_kex"], case["server_kex"]) == case["kex"]
    assert choose(case["client_ciphers"], case["server_ciphers"]) == case["cipher"]
    if case["mac"]:
        assert choose(case["client_macs"], case["server_macs"]) == case["mac"]
    client_rng = SplitMix64(case["seed"] ^ 0x00C11E47)
    server_rng = SplitMix64(case["seed"] ^ 0x005E4EE4)
    kex, cipher, mac = case["kex"], case["cipher"], case["mac"]
    client_sealer, server_sealer = Sealer(), Sealer()

    v_c = f"SSH-2.0-{case['client_software']}".encode()
    v_s = f"SSH-2.0-{case['server_software']}".encode()
    i_c = kexinit(
        client_rng.fill(16),
        case["client_kex"] + ["ext-info-c", "kex-strict-c-v00@openssh.com"],
        case["client_host_key"],
        case["client_ciphers"],
        case["client_macs"],
    )
    i_s = kexinit(
        server_rng.fill(16),
        case["server_kex"] + ["kex-strict-s-v00@openssh.com"],
        case["server_host_key"],
        case["server_ciphers"],
        case["server_macs"],
    )

    host_seed = bytes.fromhex(case["host_key_seed"])
    host_key = Ed25519PrivateKey.from_private_bytes(host_seed)
    host_public = host_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    k_s = string(b"ssh-ed25519") + string(host_public)

    client_random = client_rng.fill(96)
    server_random = server_rng.fill(64)
    client_x = X25519PrivateKey.from_private_bytes(client_random[:32])
    server_x = X25519PrivateKey.from_private_bytes(server_random[:32])
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    client_x_public = client_x.public_key().public_bytes(*raw)
    server_x_public = server_x.public_key().public_bytes(*raw)
    x_shared = client_x.exchange(X25519PublicKey.from_public_bytes(server_x_public))
    assert x_shared == server_x.exchange(X25519PublicKey.from_public_bytes(client_x_public))

    # The ML-KEM seeds (hybrid only) and the raw shared secrets, for the record.
    seeds, secrets = {}, {}
    if kex == "curve25519-sha256":
        q_c, q_s = client_x_public, server_x_public
        secrets["shared_secret"] = x_shared
        k = mpint(x_shared)
    else:
        d, z, m = client_random[32:64], client_random[64:96], server_random[32:64]
        ek = mlkem_keygen(d)
        ciphertext, k_pq = mlkem_encaps(ek, m)
        theirs = mlkem.MLKEM768PrivateKey.from_seed_bytes(d + z)
        assert theirs.decapsulate(ciphertext) == k_pq
        q_c, q_s = ek + client_x_public, ciphertext + server_x_public
        seeds.update(mlkem_d=d, mlkem_z=z, mlkem_m=m)
        secrets.update(mlkem_shared_secret=k_pq, x25519_shared_secret=x_shared)
        k = string(sha256(k_pq, x_shared))

    h = sha256(
        string(v_c), string(v_s), string(i_c), string(i_s), string(k_s), string(q_c), string(q_s), k
    )
    session_id = h
    signature = string(b"ssh-ed25519") + string(host_key.sign(h))

    iv_len, key_len = KEY_LENS[cipher]
    mac_len = MAC_LENS[mac]
    keys = {
        "iv_c2s": derive(k, h, "A", session_id, iv_len),
        "iv_s2c": derive(k, h, "B", session_id, iv_len),
        "key_c2s": derive(k, h, "C", session_id, key_len),
        "key_s2c": derive(k, h, "D", session_id, key_len),
        "mac_key_c2s": derive(k, h, "E", session_id, mac_len),
        "mac_key_s2c": derive(k, h, "F", session_id, mac_len),
    }

    # The wire, one direction at a time: each side's packets depend only on its own
    # draws and on what it received, so interleaving does not matter.
    c2s = v_c + b"\r\n" + client_sealer.seal(i_c)
    c2s += client_sealer.seal(bytes([KEX_ECDH_INIT]) + string(q_c))
    c2s += client_sealer.seal(bytes([NEWKEYS]))
    client_sealer.install(
        cipher, mac, keys["iv_c2s"], keys["key_c2s"], keys["mac_key_c2s"], client_rng.fill(255)
    )
    client_sealer.seq = 0  # strict kex
    c2s += client_sealer.seal(bytes([SERVICE_REQUEST]) + string(b"ssh-userauth"))

    s2c = v_s + b"\r\n" + server_sealer.seal(i_s)
    reply = bytes([KEX_ECDH_REPLY]) + string(k_s) + string(q_s) + string(signature)
    s2c += server_sealer.seal(reply)
    s2c += server_sealer.seal(bytes([NEWKEYS]))
    server_sealer.install(
        cipher, mac, keys["iv_s2c"], keys["key_s2c"], keys["mac_key_s2c"], server_rng.fill(255)
    )
    server_sealer.seq = 0  # strict kex
    ext_info = bytes([EXT_INFO]) + u32(2)
    ext_info += string(b"server-sig-algs") + string(SERVER_SIG_ALGS.encode())
    ext_info += string(b"ping@openssh.com") + string(b"0")
    s2c += server_sealer.seal(ext_info)
    s2c += server_sealer.seal(bytes([SERVICE_ACCEPT]) + string(b"ssh-userauth"))

    out = dict(
        v_c=v_c,
        v_s=v_s,
        i_c=i_c,
        i_s=i_s,
        k_s=k_s,
        client_x25519_scalar=client_random[:32],
        server_x25519_scalar=server_random[:32],
    )
    out.update(seeds)
    out.update(q_c=q_c, q_s=q_s)
    out.update(secrets)
    out.update(k=k, h=h, session_id=session_id, signature=signature)
    # An AEAD cipher takes no MAC keys, so E and F are left out rather than empty.
    out.update({name: key for name, key in keys.items() if key})
    # Key C at 64 bytes, as chacha20-poly1305@openssh.com would take it, runs the
    # extension step of RFC 4253 section 7.2 that no 16-byte key reaches.
    out["key_c2s_64"] = derive(k, h, "C", session_id, 64)
    out.update(c2s=c2s, s2c=s2c)
    return out


COMMON = dict(
    client_software="RecordedClient_1.0",
    server_software="RecordedServer_1.0",
    host_key_seed=hashlib.sha256(b"recorded handshake host key").hexdigest(),
    client_host_key=["ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512", "rsa-sha2-256"],
    # With an AEAD cipher the MAC lists are offered but not negotiated.
    client_macs=["hmac-sha2-256"],
    server_kex=["mlkem768x25519-sha256", "curve25519-sha256"],
    server_host_key=["ssh-ed25519"],
    server_ciphers=["aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com", "aes128-ctr"],
    server_macs=["hmac-sha2-256-etm@openssh.com", "hmac-sha2-256"],
)

GCM = dict(cipher="aes128-gcm@openssh.com", mac=None, client_ciphers=["aes128-gcm@openssh.com"])
CTR = dict(cipher="aes128-ctr", mac="hmac-sha2-256", client_ciphers=["aes128-ctr"])
CURVE = dict(kex="curve25519-sha256", client_kex=["curve25519-sha256"])
HYBRID = dict(kex="mlkem768x25519-sha256", client_kex=["mlkem768x25519-sha256"])

FILES = {
    "curve25519-sha256": [
        dict(COMMON, **GCM, **CURVE, seed=8731),
        dict(COMMON, **CTR, **CURVE, seed=4253),
    ],
    "mlkem768x25519-sha256": [
        dict(COMMON, **GCM, **HYBRID, seed=203),
        dict(COMMON, **CTR, **HYBRID, seed=4344),
    ],
}

HEADER = """\
# Recorded {kex} handshakes between ssh-proto's client and server,
# with fixed secrets.
#
# Written by vectors/gen/handshake.py (rerun `python3 vectors/gen/handshake.py` from the
# workspace root; it rewrites this file). The script does not use ssh-proto: it rebuilds
# the whole exchange from the specifications with Python's hashlib and hmac and the
# `cryptography` package ({crypto}).
# The randomness is that of `ssh_proto::sim::Pair::new(client, server, seed, Cut::Whole)`:
# SplitMix64 seeded with seed ^ 0xc11e47 (client) and seed ^ 0x5e4ee4 (server), drawn in
# the transport's order (the 16-byte KEXINIT cookie; then 96 bytes for the client's key
# exchange and 64 for the server's; then 255 padding bytes after each side's NEWKEYS).
# ssh-proto/tests/recorded_handshake.rs checks the kex functions and a replay of the pair
# against every value here.
#
# Sources: RFC 4253 sections 6, 7.2 and 8 (packets, key derivation, exchange hash); RFC
# 5656 section 4 (Q_C and Q_S in the hash); {kex_source}; RFC 8709 (the Ed25519 host key
# and signature); RFC 5647 and OpenSSH PROTOCOL section 1.6 (aes128-gcm@openssh.com); RFC
# 4344 and RFC 6668 (aes128-ctr, hmac-sha2-256); RFC 8308 (EXT_INFO); OpenSSH PROTOCOL
# section 1.10 (strict kex: sequence numbers restart at zero after NEWKEYS).
#
# One record per handshake. Plain-text fields: name, seed (decimal, for sim::Pair), kex,
# cipher and mac (negotiated; mac is `none` with an AEAD cipher), the software names of
# the version lines, and the algorithm lists each side was configured with (OpenSSH list
# syntax; the KEXINITs add ext-info-c and the kex-strict markers). Everything else is hex:
#   host_key_seed           the server's Ed25519 seed (a test key, published on purpose)
#   v_c, v_s                version lines without CR LF; i_c, i_s the KEXINIT payloads
#   k_s                     the host key blob
#   client_x25519_scalar    the first 32 bytes of the client's 96 random bytes
#   server_x25519_scalar    the first 32 bytes of the server's 64 random bytes
{kex_fields}\
#   k                       K as it enters the hash and key derivation ({k_encoding})
#   h, session_id           the exchange hash; the session id is the first H
#   signature               the server's signature blob over H
#   iv_c2s, iv_s2c          keys A and B; key_c2s, key_s2c keys C and D
#   mac_key_c2s/_s2c        keys E and F (absent with an AEAD cipher, which takes none)
#   key_c2s_64              key C derived to 64 bytes, which runs the extension step
#   c2s, s2c                every byte each side sent: version line, KEXINIT,
#                           KEX_ECDH_INIT or KEX_ECDH_REPLY, NEWKEYS, then under the new
#                           keys EXT_INFO (server) and SERVICE_REQUEST "ssh-userauth"
#                           (client) or SERVICE_ACCEPT "ssh-userauth" (server)"""

KEX_TEXT = {
    "curve25519-sha256": dict(
        crypto="X25519, Ed25519, AES-GCM, AES-CTR",
        kex_source="RFC 8731 section 3 (K is the X25519\n"
        "# output read as a big-endian integer, encoded as an mpint)",
        kex_fields="#   q_c, q_s                the X25519 public values\n"
        "#   shared_secret           the raw X25519 output\n",
        k_encoding="mpint",
    ),
    "mlkem768x25519-sha256": dict(
        crypto="X25519, Ed25519, AES-GCM, AES-CTR; OpenSSL's\n"
        "# ML-KEM-768 checks the script's own ML-KEM encapsulation",
        kex_source="draft-ietf-sshm-mlkem-hybrid-kex\n"
        "# (Q_C is the ML-KEM encapsulation key then the X25519 public value, Q_S the\n"
        "# ciphertext then the X25519 value, K the SHA-256 of the ML-KEM secret then the\n"
        "# X25519 secret, as a string); FIPS 203 (ML-KEM-768)",
        kex_fields="#   mlkem_d, mlkem_z        the client's ML-KEM key generation seeds (its\n"
        "#                           random bytes 32..64 and 64..96)\n"
        "#   mlkem_m                 the server's encapsulation message (its bytes 32..64)\n"
        "#   q_c, q_s                the hybrid values of KEX_ECDH_INIT and KEX_ECDH_REPLY\n"
        "#   mlkem_shared_secret     the ML-KEM-768 shared secret\n"
        "#   x25519_shared_secret    the raw X25519 output\n",
        k_encoding="string",
    ),
}

TEXT_FIELDS = ["name", "seed", "kex", "cipher", "mac", "client_software", "server_software"]
LIST_FIELDS = [
    "client_kex", "client_host_key", "client_ciphers", "client_macs",
    "server_kex", "server_host_key", "server_ciphers", "server_macs",
]


def write(kex, cases):
    lines = [HEADER.format(kex=kex, **KEX_TEXT[kex])]
    for case in cases:
        record = handshake(case)
        lines.append("")
        mac = case["mac"] or "none"
        case = dict(case, name=f"{kex} {case['cipher']} {mac}", mac=mac)
        lines += [f"{f} = {case[f]}" for f in TEXT_FIELDS]
        lines += [f"{f} = {','.join(case[f])}" for f in LIST_FIELDS]
        lines.append(f"host_key_seed = {case['host_key_seed']}")
        lines += [f"{f} = {v.hex()}" for f, v in record.items()]
    path = os.path.join(VECTORS, f"handshake-{kex}.txt")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {path}", file=sys.stderr)


def main():
    check_mlkem()
    for kex, cases in FILES.items():
        write(kex, cases)


if __name__ == "__main__":
    main()
