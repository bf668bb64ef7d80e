#!/bin/sh
# Install the Debian services the camera and records tests start on 127.0.0.1, once:
# GStreamer's RTSP server (harness/rtsp.py, run by the system python3 through python3-gi)
# and PostgreSQL 15 (tests/test_records.py makes a throwaway cluster with initdb and pg_ctl).
set -eu
if [ -x /usr/lib/postgresql/15/bin/pg_ctl ] && /usr/bin/python3 -c \
    "import gi; gi.require_version('GstRtspServer', '1.0'); gi.require_version('Gst', '1.0')" \
    2>/dev/null; then
    exit 0
fi
sh "$(dirname "$0")/apt-install.sh" python3-gi gir1.2-gst-rtsp-server-1.0 \
    gstreamer1.0-plugins-base gstreamer1.0-plugins-good postgresql-15
