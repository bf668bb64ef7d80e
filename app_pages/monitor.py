"""Monitor page: each camera's latest annotated frame and status (from the watcher, never
recomputed here), the masked share over time, people counts, events and downloads."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

import ui
from facemask.errors import FacemaskError
from facemask.records import RecordStore, database_url, live_dir, snapshot_dir
from facemask.records import monitor as mon

LIVE_REFRESH_S = 1.0
STATE_COLORS = {"online": "green", "offline": "red", "connecting": "orange", "stopped": "gray",
                "no watcher": "gray"}  # fmt: skip
HOW_TO_ADD = """No camera is being watched yet. Cameras are set by the operator on the server:

```
facemask watch --camera entrance=rtsp://user:password@192.168.1.20/stream1
facemask watch --cameras cameras.toml      # [cameras] entrance = "rtsp://..."
```

A camera may be `rtsp://` (read over TCP), `http(s)://` MJPEG, a video file (played in a loop)
or a device index such as `0`. The watcher records counts, not images, into `records/facemask.db`
(or `--db` / `FACEMASK_DB`, e.g. a PostgreSQL URL); this page shows what it sees. Alerts,
webhooks, snapshots and several watchers: docs/monitor.md."""


@st.cache_resource(show_spinner=False)
def _store(url: str) -> RecordStore:
    return RecordStore(url, create=False)


def records_store() -> RecordStore | None:
    """The records database, or None (with the reason shown) when there is none yet."""
    try:
        return _store(database_url())
    except FacemaskError as exc:
        if "no records" not in str(exc):
            ui.show_error(exc)
        return None


def live_panel() -> None:
    cameras = mon.live_cameras(live_dir())
    if not cameras:
        st.caption("No watcher is writing live frames (start `facemask watch`).")
        return
    problem = mon.records_problem(cameras)
    if problem:
        st.warning(f"{problem} The watcher keeps the counts and retries.")
    for row_start in range(0, len(cameras), 3):
        for column, cam in zip(st.columns(3), cameras[row_start : row_start + 3], strict=False):
            with column.container(border=True):
                color = STATE_COLORS.get(cam.state, "gray")
                st.markdown(f"**{cam.name}** :{color}[● {cam.state}]")
                if cam.frame is not None:
                    st.image(cam.frame.read_bytes(), width="stretch")
                age = "–" if cam.frame_age_s is None else f"{cam.frame_age_s:.2f} s"
                st.caption(
                    f"{cam.analysed_fps:.1f} FPS analysed · frame age {age} · "
                    f"{cam.reconnects} reconnects · {cam.rejected} frames refused · "
                    f"{cam.alerts} alerts"
                )
                if cam.detail and cam.state != "online":
                    st.caption(cam.detail)


st.title("Monitor")
store = records_store()
if store is None and not mon.live_cameras(live_dir()):
    st.info(HOW_TO_ADD)
    st.stop()

st.fragment(live_panel, run_every=LIVE_REFRESH_S)()
if store is None:
    st.stop()

period = st.segmented_control("Period", list(mon.PERIODS), default="Last hour") or "Last hour"
start = mon.since(period)
try:
    minutes = store.minutes(since=start)
    statuses = store.status_changes(since=start)
    people = store.person_records(since=start, limit=500)
    alerts = store.alert_events(since=start)
except FacemaskError as exc:
    ui.show_error(exc)
    st.stop()

share = mon.masked_share(minutes, mon.BUCKETS[period])
st.subheader("Masked share")
if share.empty:
    st.caption(f"No people recorded in the {period.lower()}.")
else:
    st.plotly_chart(mon.share_figure(share), key="masked_share")
st.subheader("People")
counts = mon.people_table(minutes)
if counts.empty:
    st.caption("Nobody yet.")
else:
    st.dataframe(counts)
st.subheader("Alerts")
if not alerts:
    st.caption(f"No alerts in the {period.lower()}.")
else:
    st.dataframe(mon.alerts_table(alerts), hide_index=True)
    newest = mon.newest_snapshot(alerts, snapshot_dir())
    if newest is not None:
        event, path = newest
        st.image(path.read_bytes(), caption=f"{event.at:%Y-%m-%d %H:%M:%S} UTC · {event.message}",
                 width=480)  # fmt: skip
st.subheader("Events")
st.dataframe(mon.events_table(statuses, people), hide_index=True)

table = mon.minutes_table(minutes)
stamp = f"{datetime.now(UTC):%Y%m%dT%H%M}"
left, right = st.columns(2)
left.download_button(
    "Counts per minute (CSV)", mon.csv_bytes(table), f"facemask-counts-{stamp}.csv", "text/csv"
)
right.download_button(
    "Counts per minute (Parquet)",
    mon.parquet_bytes(table),
    f"facemask-counts-{stamp}.parquet",
    "application/vnd.apache.parquet",
)
