"""Python SSH peers for the authentication interop tests, run by the venv's interpreter.

    auth_peer.py asyncssh-server --host-key FILE --client-key FILE.pub --user USER
                                 --password PASSWORD --port N
    auth_peer.py asyncssh-client --port N --user USER --key FILE
    auth_peer.py paramiko-client --port N --user USER (--key FILE | --password PASSWORD)

The server accepts one user with one public key or one password. It prints
"listening on 127.0.0.1 port N" once it listens, a line for each decision it makes and
"authenticated as USER with METHOD" for each login; asyncssh's own log (at debug level 1)
goes to the same output, and names the signature algorithm of each verified request.

The clients connect to 127.0.0.1, authenticate, print "authenticated as USER with METHOD"
or "refused: WHY", and disconnect without opening a channel: the server they are pointed
at need not have a connection layer. They exit 0 when authenticated, 1 when refused and
2 on any other error. They do not check the server's host key; what they test is the
authentication that follows.
"""

import argparse
import asyncio
import logging
import socket
import sys

CONNECT_TIMEOUT = 20


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["asyncssh-server", "asyncssh-client", "paramiko-client"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--key")
    parser.add_argument("--password")
    parser.add_argument("--host-key")
    parser.add_argument("--client-key")
    return parser.parse_args()


def run_asyncssh_server(args):
    import asyncssh

    logging.basicConfig(level=logging.DEBUG, stream=sys.stdout, format="asyncssh: %(message)s")
    asyncssh.set_debug_level(1)
    allowed = asyncssh.read_public_key(args.client_key)

    class Server(asyncssh.SSHServer):
        def __init__(self):
            self.user = None
            self.method = None

        def begin_auth(self, username):
            self.user = username
            # Authentication is always required.
            return True

        def public_key_auth_supported(self):
            return True

        def validate_public_key(self, username, key):
            ok = username == args.user and key.public_data == allowed.public_data
            verdict = "accepted" if ok else "refused"
            print(f"publickey {verdict} user={username} key={key.get_algorithm()}", flush=True)
            if ok:
                self.method = "publickey"
            return ok

        def password_auth_supported(self):
            return True

        def validate_password(self, username, password):
            ok = username == args.user and password == args.password
            print(f"password {'accepted' if ok else 'refused'} user={username}", flush=True)
            if ok:
                self.method = "password"
            return ok

        def auth_completed(self):
            print(f"authenticated as {self.user} with {self.method}", flush=True)

    async def serve():
        await asyncssh.create_server(
            Server, "127.0.0.1", args.port, server_host_keys=[args.host_key]
        )
        print(f"listening on 127.0.0.1 port {args.port}", flush=True)
        await asyncio.Future()

    asyncio.run(serve())


def run_asyncssh_client(args):
    import asyncssh

    async def connect():
        try:
            async with asyncssh.connect(
                "127.0.0.1",
                port=args.port,
                username=args.user,
                client_keys=[args.key],
                known_hosts=None,
                agent_path=None,
                password=None,
                preferred_auth="publickey",
                connect_timeout=CONNECT_TIMEOUT,
            ):
                print(f"authenticated as {args.user} with publickey", flush=True)
                return 0
        except asyncssh.PermissionDenied as e:
            print(f"refused: {e}", flush=True)
            return 1

    return asyncio.run(connect())


def run_paramiko_client(args):
    import paramiko

    sock = socket.create_connection(("127.0.0.1", args.port), timeout=CONNECT_TIMEOUT)
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=CONNECT_TIMEOUT)
        try:
            if args.key:
                method = "publickey"
                transport.auth_publickey(args.user, paramiko.PKey.from_path(args.key))
            else:
                method = "password"
                transport.auth_password(args.user, args.password)
        except paramiko.AuthenticationException as e:
            print(f"refused: {e}", flush=True)
            return 1
        if not transport.is_authenticated():
            print("refused: not authenticated", flush=True)
            return 1
        print(f"authenticated as {args.user} with {method}", flush=True)
        return 0
    finally:
        transport.close()


def main():
    args = parse_args()
    try:
        if args.mode == "asyncssh-server":
            run_asyncssh_server(args)
            return 0
        if args.mode == "asyncssh-client":
            return run_asyncssh_client(args)
        return run_paramiko_client(args)
    except Exception as e:  # noqa: BLE001 - any other failure is exit status 2, with its cause
        print(f"error: {type(e).__name__}: {e}", flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
