"""A throwaway RTSP server on 127.0.0.1 for the camera tests (GStreamer's, through Debian's
python3-gi: run it with the system python3, not the project's venv).

    python3 tests/rtsp_server.py PORT FILE.mp4

Serves rtsp://127.0.0.1:PORT/test: the H.264 of FILE (an mp4), from its start for each client.
Prints "ready" once listening; runs until killed.
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    Gst.init(None)
    port, clip = sys.argv[1], sys.argv[2]
    launch = (
        f'( filesrc location="{clip}" ! qtdemux ! h264parse '
        "! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(False)
    server.get_mount_points().add_factory("/test", factory)
    if server.attach(None) == 0:
        sys.exit(f"could not listen on 127.0.0.1:{port}")
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
