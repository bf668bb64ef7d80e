"""A throwaway RTSP server on 127.0.0.1 for the camera tests and the monitor bench: GStreamer's,
through Debian's python3-gi (scripts/install-test-services.sh), so the server itself runs under
the system python3, not the project's venv:

    python3 harness/rtsp.py PORT NAME=FILE.mp4 [NAME=FILE.mp4 ...]

serves rtsp://127.0.0.1:PORT/NAME: the H.264 of each FILE (an mp4), from its start for each
client, once (the stream ends with the file). Prints "ready" once listening; runs until
killed. `serve` starts it from the venv's Python (tests, benches); `available` says whether
this machine can.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"


def available() -> bool:
    """Whether the system python3 has GStreamer's RTSP server (gir1.2-gst-rtsp-server-1.0)."""
    check = "import gi; gi.require_version('GstRtspServer', '1.0')"
    return os.path.exists(SYSTEM_PYTHON) and subprocess.run(
        [SYSTEM_PYTHON, "-c", check], capture_output=True
    ).returncode == 0  # fmt: skip


def start(port: int, clips: Mapping[str, Path]) -> subprocess.Popen:
    """The server process, once it listens on 127.0.0.1:port (kill it when done)."""
    proc = subprocess.Popen(
        [SYSTEM_PYTHON, __file__, str(port), *(f"{name}={path}" for name, path in clips.items())],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        proc.wait()
        raise RuntimeError(f"the RTSP server did not start on 127.0.0.1:{port}")
    return proc


@contextmanager
def serve(port: int, clips: Mapping[str, Path]) -> Iterator[dict[str, str]]:
    """Serve each clip at rtsp://127.0.0.1:port/NAME; yields {NAME: URL}."""
    proc = start(port, clips)
    try:
        yield {name: f"rtsp://127.0.0.1:{port}/{name}" for name in clips}
    finally:
        proc.kill()
        proc.wait()


def main() -> None:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    port, mounts = sys.argv[1], [arg.partition("=") for arg in sys.argv[2:]]
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    for name, _, clip in mounts:
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(
            f'( filesrc location="{clip}" ! qtdemux ! h264parse '
            "! rtph264pay name=pay0 pt=96 config-interval=1 )"
        )
        factory.set_shared(False)
        server.get_mount_points().add_factory(f"/{name}", factory)
    if server.attach(None) == 0:
        sys.exit(f"could not listen on 127.0.0.1:{port}")
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
