"""Helpers shared by the tests (tests/) and the benchmarks (bench/): the app on a free port in
headless Chromium with a fake camera, a byte-counting proxy, process CPU and memory (browser.py);
face clips (clips.py) and an RTSP server (rtsp.py) for the camera tests and the monitor bench.
Not part of the product: nothing in facemask/ or the pages imports it."""

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
