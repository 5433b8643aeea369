"""Python SSH clients that carry bytes through a direct-tcpip channel, run by the venv's
interpreter for the forwarding-server interop tests.

    forward_peer.py paramiko --port N --user USER --key FILE --host-key FILE.pub
                             --to HOST:PORT --bytes N
    forward_peer.py asyncssh --port N --user USER --key FILE --known-hosts FILE
                             --to HOST:PORT --bytes N

Each connects to 127.0.0.1 on port N, checks the server's host key (paramiko against the
public key file, asyncssh against a known_hosts file), logs in with the key, opens one
direct-tcpip channel to HOST:PORT (an echo service), sends N seeded bytes while reading
back what comes, half-closes its side after the last byte and reads to the end. It prints
"sent SHA256 received SHA256 (N bytes)" and then OK when the two match, FAIL when they do
not. Exit status: 0 OK, 1 FAIL or the channel was refused, 2 any other error.
"""

import argparse
import asyncio
import hashlib
import random
import socket
import sys
import threading

CONNECT_TIMEOUT = 20
CHUNK = 32 * 1024


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["paramiko", "asyncssh"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--host-key")
    parser.add_argument("--known-hosts")
    parser.add_argument("--to", required=True)
    parser.add_argument("--bytes", type=int, required=True)
    return parser.parse_args()


def chunks(total):
    """The bytes to send, in chunks: the same stream on every run, never all in memory."""
    rng = random.Random(total)
    left = total
    while left > 0:
        n = min(left, CHUNK)
        yield rng.randbytes(n)
        left -= n


def verdict(sent, received, count):
    print(f"sent {sent} received {received} ({count} bytes)", flush=True)
    if sent == received:
        print("OK", flush=True)
        return 0
    print("FAIL", flush=True)
    return 1


def destination(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


def run_paramiko(args):
    import paramiko

    expected = paramiko.PublicBlob.from_file(args.host_key)
    sock = socket.create_connection(("127.0.0.1", args.port), timeout=CONNECT_TIMEOUT)
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=CONNECT_TIMEOUT)
        offered = transport.get_remote_server_key()
        if offered.get_name() != expected.key_type or offered.asbytes() != expected.key_blob:
            print(f"error: the server's host key is not the one in {args.host_key}", flush=True)
            return 2
        transport.auth_publickey(args.user, paramiko.PKey.from_path(args.key))
        try:
            channel = transport.open_channel(
                "direct-tcpip", destination(args.to), ("127.0.0.1", 0), timeout=CONNECT_TIMEOUT
            )
        except paramiko.ChannelException as e:
            print(f"refused: {e.code} {e.text}", flush=True)
            return 1
        channel.settimeout(CONNECT_TIMEOUT)
        sent = hashlib.sha256()

        def send():
            for chunk in chunks(args.bytes):
                sent.update(chunk)
                channel.sendall(chunk)
            channel.shutdown_write()

        sender = threading.Thread(target=send)
        sender.start()
        received = hashlib.sha256()
        count = 0
        while True:
            data = channel.recv(256 * 1024)
            if not data:
                break
            received.update(data)
            count += len(data)
        sender.join()
        channel.close()
        return verdict(sent.hexdigest(), received.hexdigest(), count)
    finally:
        transport.close()


def run_asyncssh(args):
    import asyncssh

    async def forward():
        async with asyncssh.connect(
            "127.0.0.1",
            port=args.port,
            username=args.user,
            client_keys=[args.key],
            known_hosts=args.known_hosts,
            agent_path=None,
            password=None,
            preferred_auth="publickey",
            connect_timeout=CONNECT_TIMEOUT,
        ) as conn:
            host, port = destination(args.to)
            try:
                reader, writer = await conn.open_connection(host, port)
            except asyncssh.ChannelOpenError as e:
                print(f"refused: {e.code} {e.reason}", flush=True)
                return 1
            sent = hashlib.sha256()

            async def send():
                for chunk in chunks(args.bytes):
                    sent.update(chunk)
                    writer.write(chunk)
                    await writer.drain()
                writer.write_eof()

            sender = asyncio.ensure_future(send())
            received = hashlib.sha256()
            count = 0
            while True:
                data = await reader.read(256 * 1024)
                if not data:
                    break
                received.update(data)
                count += len(data)
            await sender
            writer.close()
            return verdict(sent.hexdigest(), received.hexdigest(), count)

    return asyncio.run(asyncio.wait_for(forward(), 120))


def main():
    args = parse_args()
    try:
        if args.mode == "paramiko":
            return run_paramiko(args)
        return run_asyncssh(args)
    except Exception as e:  # noqa: BLE001 - any other failure is exit status 2, with its cause
        print(f"error: {type(e).__name__}: {e}", flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
