"""Small servers for the camera, records and watcher tests (MJPEG, silent, a webhook receiver);
the face clips come from harness.clips (shared with bench/). Nothing here is stored."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import cv2
import numpy as np


def jpeg(rgb: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]))
    assert ok
    return data.tobytes()


MJPEG_TYPE = b"Content-Type: multipart/x-mixed-replace; boundary=frame"
Parts = Callable[[int], Iterator[bytes | None]]
"""parts(connection number) -> the JPEG bodies to send (None: hold the connection, send nothing)."""


@contextmanager
def mjpeg_server(parts: Parts, fps: float = 20.0) -> Iterator[str]:
    """An HTTP MJPEG (multipart/x-mixed-replace) server on 127.0.0.1; yields its URL."""
    stop = threading.Event()
    connections = []

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            self.rfile.readline()  # the request line; the headers are not needed
            connections.append(1)
            self.wfile.write(b"HTTP/1.0 200 OK\r\n" + MJPEG_TYPE + b"\r\n\r\n")
            try:
                for body in parts(len(connections)):
                    if body is None:
                        stop.wait(30)
                        return
                    self.wfile.write(
                        b"--frame\r\nContent-Type: image/jpeg\r\n"
                        + f"Content-Length: {len(body)}\r\n\r\n".encode()
                        + body
                        + b"\r\n"
                    )
                    if stop.wait(1 / fps):
                        return
            except OSError:
                return

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/video.mjpg"
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


@contextmanager
def silent_server() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that accepts connections and never sends a byte; its port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        sock.close()


def wait_for(condition: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    """Poll until condition() is true or timeout seconds pass; the last answer."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(step)
    return condition()


class Receiver:
    """What a webhook receiver got: JSON bodies, and the status it answered each request with."""

    def __init__(self, fail_first: int) -> None:
        self.fail_first = fail_first
        self.requests: list[tuple[int, dict]] = []  # (status answered, body)
        self.auth: list[str | None] = []  # each request's Authorization header
        self.url = ""

    @property
    def delivered(self) -> list[dict]:
        return [body for status, body in self.requests if status == 200]


@contextmanager
def webhook_receiver(fail_first: int = 0, path: str = "/hook") -> Iterator[Receiver]:
    """An HTTP server on 127.0.0.1 taking JSON POSTs at `path`: it answers 503 to the first
    `fail_first` requests, then 200."""
    import http.server
    import json

    receiver = Receiver(fail_first)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the standard library's name)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            ok = self.path == path and len(receiver.requests) >= receiver.fail_first
            receiver.requests.append((200 if ok else 503, body))
            receiver.auth.append(self.headers.get("Authorization"))
            self.send_response(200 if ok else 503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
