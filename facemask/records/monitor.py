"""What the Monitor page shows: the watcher's live folder (each camera's latest annotated frame
and status) and the records database (masked share over time, people, events), as tables,
a plotly figure and downloads. No streamlit here; app_pages/monitor.py only lays it out."""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from facemask.files import read_json
from facemask.records.store import AlertEvent, MinuteRecord, PersonRecord, StatusChange

MASKED = "with_mask"
"""The label that counts as masked; every other label (no mask, worn wrong) does not."""
PERIODS = {"Last hour": timedelta(hours=1), "Last day": timedelta(days=1),
           "Last week": timedelta(days=7)}  # fmt: skip
BUCKETS = {"Last hour": "1min", "Last day": "15min", "Last week": "1h"}
"""The masked share is computed per bucket: a minute of one person says little over a week."""
STALE_S = 10.0
"""A live status older than this means no watcher is writing it (the watcher writes each second)."""


@dataclass(frozen=True)
class LiveCamera:
    """One camera's newest status from the watcher, and its latest annotated frame if any."""

    name: str
    state: str  # the watcher's, or "no watcher" when its status is stale
    detail: str
    analysed_fps: float
    frame_age_s: float | None
    reconnects: int
    rejected: int
    age_s: float  # seconds since the watcher last wrote the status
    frame: Path | None
    records_error: str = ""  # the watcher cannot write to the records database (retrying)
    alerts: int = 0  # alerts the watcher raised for this camera since it started


def live_cameras(folder: Path, now: float | None = None) -> list[LiveCamera]:
    """The cameras a watcher has written statuses for in `folder`, by name."""
    now = time.time() if now is None else now
    cameras = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        status = read_json(path, default=None)
        if not isinstance(status, dict) or "state" not in status:
            continue
        age = max(0.0, now - float(status.get("updated", 0)))
        state = status["state"]
        if age > STALE_S and state not in ("stopped",):
            state = "no watcher"
        frame = path.with_suffix(".jpg")
        cameras.append(
            LiveCamera(
                name=path.stem,
                state=state,
                detail=str(status.get("detail", "")),
                analysed_fps=float(status.get("analysed_fps") or 0.0),
                frame_age_s=status.get("frame_age_s"),
                reconnects=int(status.get("reconnects", 0)),
                rejected=int(status.get("rejected", 0)),
                age_s=age,
                frame=frame if frame.is_file() else None,
                records_error=str(status.get("records_error") or "") if state == "online" else "",
                alerts=int(status.get("alerts", 0)),
            )
        )
    return cameras


def records_problem(cameras: Sequence[LiveCamera]) -> str:
    """What a running watcher says about the records database when it refuses writes, else ""."""
    return next((c.records_error for c in cameras if c.records_error), "")


def since(period: str, now: datetime | None = None) -> datetime:
    """The start of a PERIODS choice, in UTC."""
    return (now or datetime.now(UTC)) - PERIODS[period]


def minutes_table(records: Sequence[MinuteRecord]) -> pd.DataFrame:
    """Long form, one row per camera, minute, kind (people / faces) and label: the CSV's rows."""
    rows = [
        {"camera": r.camera, "minute": r.minute, "kind": kind, "label": label, "n": n}
        for r in records
        for kind, table in (("people", r.people), ("faces", r.faces))
        for label, n in table.items()
    ]
    return pd.DataFrame(rows, columns=["camera", "minute", "kind", "label", "n"])


def masked_share(records: Sequence[MinuteRecord], bucket: str) -> pd.DataFrame:
    """Per camera and for all cameras ("all"): people, masked people and the masked share per
    time bucket (a pandas frequency such as "15min"); buckets without people are left out."""
    table = minutes_table(records)
    table = table[table["kind"] == "people"]
    columns = ["camera", "time", "people", "masked", "share"]
    if table.empty:
        return pd.DataFrame(columns=columns)
    table = table.assign(
        time=pd.to_datetime(table["minute"]).dt.floor(bucket),
        masked=table["n"].where(table["label"] == MASKED, 0),
    )
    every = pd.concat([table, table.assign(camera="all")])
    grouped = every.groupby(["camera", "time"], as_index=False)[["n", "masked"]].sum()
    grouped = grouped.rename(columns={"n": "people"})
    grouped["share"] = grouped["masked"] / grouped["people"]
    return grouped[columns]


def share_figure(share: pd.DataFrame):
    """Masked share over time: one line per camera, all cameras together in black."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for camera, rows in share.groupby("camera", sort=True):
        everyone = camera == "all"
        fig.add_trace(
            go.Scatter(
                x=rows["time"],
                y=rows["share"],
                name="all cameras" if everyone else camera,
                mode="lines+markers",
                line={"color": "black", "width": 3} if everyone else {"width": 1.5},
                customdata=rows[["masked", "people"]].to_numpy(),
                hovertemplate="%{y:.0%} masked (%{customdata[0]} of %{customdata[1]})"
                "<extra>%{fullData.name}</extra>",
            )
        )
    fig.update_layout(
        yaxis={"title": "masked share", "tickformat": ".0%", "range": [0, 1.02]},
        xaxis_title="time (UTC)",
        height=340,
        margin={"l": 10, "r": 10, "t": 20, "b": 10},
        legend={"orientation": "h"},
    )
    return fig


def people_table(records: Sequence[MinuteRecord]) -> pd.DataFrame:
    """People per camera and label over the records (rows: cameras; columns: labels)."""
    table = minutes_table(records)
    table = table[table["kind"] == "people"]
    if table.empty:
        return pd.DataFrame()
    return table.pivot_table(
        index="camera", columns="label", values="n", aggfunc="sum", fill_value=0
    )


def events_table(
    statuses: Sequence[StatusChange], people: Sequence[PersonRecord], limit: int = 200
) -> pd.DataFrame:
    """Camera status changes and people as they were first seen, newest first."""
    rows = [
        {"time": s.at, "camera": s.camera, "event": s.state, "detail": s.detail}
        for s in statuses
    ] + [
        {"time": p.first_seen, "camera": p.camera, "event": f"person: {p.label}",
         "detail": f"seen {(p.last_seen - p.first_seen).total_seconds():.0f} s, "
                   f"{p.frames} frames"}
        for p in people
    ]  # fmt: skip
    table = pd.DataFrame(rows, columns=["time", "camera", "event", "detail"])
    return table.sort_values("time", ascending=False).head(limit).reset_index(drop=True)


def alerts_table(events: Sequence[AlertEvent]) -> pd.DataFrame:
    """Alert events, newest first, as the page lists them."""
    rows = [{"time": e.at, "camera": e.camera, "rule": e.rule.replace("_", " "),
             "message": e.message, "snapshot": e.snapshot} for e in events]  # fmt: skip
    return pd.DataFrame(rows, columns=["time", "camera", "rule", "message", "snapshot"])


def newest_snapshot(events: Sequence[AlertEvent], folder: Path) -> tuple[AlertEvent, Path] | None:
    """The newest alert whose snapshot is still in `folder` (retention deletes old ones)."""
    for event in events:
        path = folder / event.snapshot
        if event.snapshot and ".." not in Path(event.snapshot).parts and path.is_file():
            return event, path
    return None


def csv_bytes(table: pd.DataFrame) -> bytes:
    return table.to_csv(index=False).encode()


def parquet_bytes(table: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    table.to_parquet(buffer, index=False)
    return buffer.getvalue()
