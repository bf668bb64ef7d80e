"""The Training page's model tabs: curves of runs, models compared side by side, exports.

Widgets and calls only (facemask.compare, facemask.charts and facemask.files do the work);
app_pages/training.py draws them in its Curves, Compare models and Export tabs.
"""

from __future__ import annotations

import streamlit as st

import ui
from facemask import charts, compare, files
from facemask.runs import RunStore

_LATENCY_KEY = "measured_latency"


def curves_charts(runs: dict[str, dict], key: str) -> None:
    """Loss and accuracy curves side by side."""
    for column, metric in zip(st.columns(2), ("loss", "accuracy"), strict=True):
        column.plotly_chart(charts.curves_figure(runs, metric), key=f"{key}_{metric}")


def curves_section(store: RunStore) -> None:
    dirs = {p.name: p for p in [*store.in_progress(), *store.compared_runs()]}
    histories = {name: c for name, path in dirs.items() if (c := compare.curves(path))}
    if not histories:
        st.info("No training history yet: curves appear here once a run finishes its first epoch.")
        return
    names = list(histories)
    if chosen := st.multiselect("Runs", names, default=names[:3], key="curves_runs"):
        curves_charts({name: histories[name] for name in chosen}, "curve")


def compare_section(store: RunStore) -> None:
    if skipped := store.unreadable():
        names = ", ".join(name for name, _ in skipped)
        st.caption(f"Skipped, their card.json cannot be read: {names}.")
    for name, reason in store.not_servable():
        st.caption(f"{name}: {reason}")
    rows = compare.comparison_rows(store.compared_runs())
    if not rows:
        st.info("Nothing to compare yet: ship a model in models/ or finish a training run.")
        return
    names = [r["name"] for r in rows]
    chosen = st.multiselect("Models", names, default=names[:4], key="compare_models")
    measured = st.session_state.setdefault(_LATENCY_KEY, {})
    rows = [compare.with_measured_latency(r, measured) for r in rows if r["name"] in chosen]
    missing = compare.unmeasured(rows)
    if missing and st.button(
        f"Measure CPU latency on this machine ({len(missing)} model(s) without it)",
        key="measure_latency",
        help="Classifies one face crop 20 times with each model's served file; median ms.",
    ):
        with st.spinner("Measuring..."):
            failures = compare.measure_rows(missing, measured)
        for exc in failures:
            ui.show_error(exc)
        if not failures:
            st.rerun()  # redraw the table and charts with the numbers, without the button
        rows = [compare.with_measured_latency(r, measured) for r in rows]
    if not rows:
        return
    for note in compare.table_notes(rows):
        st.caption(note)
    st.dataframe([compare.display_row(r) for r in rows], hide_index=True)
    for column, key in zip(
        st.columns(4), ("accuracy", "latency_ms", "size_mb", "parameters"), strict=True
    ):
        column.plotly_chart(charts.comparison_figure(rows, key), key=f"bar_{key}")
    st.markdown("**Per class** (test split)")
    st.dataframe(compare.per_class_rows(rows), hide_index=True)
    st.markdown("**Confusion matrices** (test split; rows: true label, columns: predicted)")
    matrices = compare.confusions(rows)
    for start in range(0, len(matrices), 3):
        for column, (name, folder, labels, matrix) in zip(
            st.columns(3), matrices[start : start + 3], strict=False
        ):
            if matrix:
                column.plotly_chart(
                    charts.confusion_figure(labels, matrix, name), key=f"cm_{folder}"
                )
            else:
                column.caption(f"{name}: no confusion matrix in its card.")


@st.cache_data(max_entries=4, show_spinner="Zipping the TF.js model...")
def _zipped(folder: str, mtime: float) -> bytes:
    return files.zip_folder(folder)  # mtime is in the key: a re-export makes a new entry


def export_section(store: RunStore) -> None:
    entries = {e.name: e for e in store.models()}
    if not entries:
        st.info("No model to export yet.")
        return
    name = st.selectbox("Model", list(entries), key="export_model")
    columns = st.columns(3) + st.columns(2)
    for column, (item, title, mime) in zip(columns, files.DOWNLOADS, strict=True):
        path = files.downloadable(entries[name].path, item)
        if path is None:
            column.caption(f"{title}: not exported for this model.")
            continue
        if path.is_dir():  # a TF.js folder, zipped
            data = _zipped(str(path), max(p.stat().st_mtime for p in path.rglob("*")))
            size, file_name = len(data), f"{name}_{item}.zip"
        else:
            data, size, file_name = path.read_bytes, path.stat().st_size, f"{name}_{item}"
        label = f"{title} · {compare.size_text(size)}"
        column.download_button(
            label,
            data,
            file_name=file_name,
            mime=mime,
            key=f"export_{name}_{item}",
            on_click="ignore",
        )
