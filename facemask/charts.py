"""The app's plotly charts: faces in view over time (live), training curves, confusion matrices
and the model comparison's bars. Figures only; nothing here imports streamlit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from facemask.compare import COLUMNS
from facemask.pipeline import LABEL_TEXT, label_color


def counts_figure(series: Mapping[str, list], labels: tuple[str, ...]):
    """Faces in view over time, stacked by label (so equal counts never hide each other)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for label in labels:
        r, g, b = label_color(label)
        fig.add_trace(
            go.Scatter(
                x=series["time"],
                y=series[label],
                mode="lines",
                stackgroup="faces",
                name=LABEL_TEXT.get(label, label),
                line={"color": f"rgb({r},{g},{b})", "width": 1.5, "shape": "hv"},
                fillcolor=f"rgba({r},{g},{b},0.45)",
                hovertemplate="%{x|%H:%M:%S}: %{y} faces<extra>%{fullData.name}</extra>",
            )
        )
    fig.update_layout(
        title="Faces in view (mean per second, last minute)",
        yaxis_title="faces",
        yaxis_rangemode="tozero",
        height=320,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h", "y": -0.2, "traceorder": "normal"},
    )
    return fig


# -- plotly figures -------------------------------------------------------------------------
def curves_figure(runs: Mapping[str, Mapping[str, Sequence[Any]]], metric: str):
    """Train (solid) vs validation (dotted) curves of `metric` per epoch, one colour per run."""
    import plotly.graph_objects as go
    from plotly.colors import qualitative

    fig = go.Figure()
    palette = qualitative.Plotly
    for i, (name, series) in enumerate(runs.items()):
        color = palette[i % len(palette)]
        for key, dash, suffix in ((metric, "solid", "train"), (f"val_{metric}", "dot", "val")):
            if key not in series:
                continue
            fig.add_trace(
                go.Scatter(
                    x=list(series["epoch"]),
                    y=list(series[key]),
                    mode="lines+markers",
                    name=f"{name} · {suffix}",
                    line={"color": color, "dash": dash},
                    customdata=list(series.get("phase", [])),
                    hovertemplate="epoch %{x} (%{customdata})<br>%{y:.4f}<extra>%{fullData.name}"
                    "</extra>",
                )
            )
    fig.update_layout(
        title=metric.replace("_", " ").capitalize(),
        xaxis_title="epoch (head, then fine-tune)",
        yaxis_title=metric,
        height=360,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h", "y": -0.25},
    )
    return fig


def confusion_figure(labels: Sequence[str], matrix: Sequence[Sequence[int]], title: str):
    """Confusion matrix heatmap: rows true label, columns predicted, counts in the cells."""
    import plotly.graph_objects as go

    fig = go.Figure(
        go.Heatmap(
            z=[list(r) for r in matrix],
            x=list(labels),
            y=list(labels),
            colorscale="Blues",
            text=[[str(v) for v in r] for r in matrix],
            texttemplate="%{text}",
            showscale=False,
            hovertemplate="true %{y}<br>predicted %{x}<br>%{z}<extra></extra>",
        )
    )
    fig.update_layout(
        title=title,
        xaxis_title="predicted",
        yaxis_title="true",
        yaxis_autorange="reversed",
        height=320,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return fig


def comparison_figure(rows: Sequence[Mapping[str, Any]], key: str):
    """Bar chart of one numeric column of the comparison, one bar per model."""
    import plotly.graph_objects as go

    shown = [r for r in rows if r.get(key) is not None]
    fig = go.Figure(
        go.Bar(
            x=[r["name"] for r in shown],
            y=[r[key] for r in shown],
            text=[_fmt(r[key]) for r in shown],
            textposition="auto",
        )
    )
    fig.update_layout(
        title=COLUMNS.get(key, key),
        height=280,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return fig


def _fmt(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"
