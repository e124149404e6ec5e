"""Loopback helpers shared by the benchmarks that start servers (moto, a Ballista cluster)."""

import socket
import time


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, what: str, timeout_s: float = 30) -> None:
    """Returns once something accepts connections on `port`; exits naming `what` after `timeout_s`."""
    deadline = time.time() + timeout_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.time() > deadline:
                raise SystemExit(f"{what} did not listen on 127.0.0.1:{port}")
            time.sleep(0.1)
