"""Plotly figures with the same look everywhere: titles, units on the axes, dates on x, and the
Okabe-Ito colours, which stay apart for the common kinds of colour blindness."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

BLUE, ORANGE, GREEN, VERMILION, SKY, PURPLE, GREY = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#56B4E9",
    "#CC79A7",
    "#7F7F7F",
)
BAND_ALPHA = {50: 0.35, 80: 0.22, 95: 0.12}


def _layout(fig: go.Figure, title: str, y_title: str, x_title: str = "date") -> go.Figure:
    fig.update_layout(
        title=title,
        xaxis_title=x_title,
        yaxis_title=y_title,
        legend_orientation="h",
        legend_y=-0.2,
        margin={"t": 50, "b": 10, "l": 10, "r": 40},  # the right edge holds the upright toolbar
        height=430,
        template="plotly_white",
        # Upright at the right edge, the toolbar no longer covers the title on hover.
        modebar_orientation="v",
    )
    return fig


LAST_YEAR_DAYS = 364  # 52 weeks: the same weekday a year before


def forecast_chart(
    history: pd.DataFrame,
    forecast: pd.DataFrame,
    actual_after: pd.DataFrame,
    title: str,
    last_year: pd.DataFrame | None = None,
    events: pd.DataFrame | None = None,
) -> go.Figure:
    """History, the point forecast, its 50/80/95 % bands, (for an older forecast) what sold since,
    what sold on the same weekdays 52 weeks before, and the calendar's events in the 28 days."""
    fig = go.Figure()
    for level in (95, 80, 50):
        fig.add_trace(
            go.Scatter(
                x=forecast["date"],
                y=forecast[f"hi_{level}"],
                mode="lines",
                line={"width": 0},
                showlegend=False,
                hoverinfo="skip",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=forecast["date"],
                y=forecast[f"lo_{level}"],
                mode="lines",
                line={"width": 0},
                fill="tonexty",
                fillcolor=f"rgba(0,114,178,{BAND_ALPHA[level]})",
                name=f"{level} % interval",
            )
        )
    fig.add_trace(
        go.Scatter(x=history["date"], y=history["units"], mode="lines", line={"color": GREY}, name="actual units")
    )
    fig.add_trace(
        go.Scatter(
            x=forecast["date"],
            y=forecast["forecast"],
            mode="lines",
            line={"color": BLUE, "width": 2.5},
            name="forecast",
        )
    )
    if not actual_after.empty:
        fig.add_trace(
            go.Scatter(
                x=actual_after["date"],
                y=actual_after["units"],
                mode="lines+markers",
                line={"color": VERMILION},
                name="actual since the forecast",
            )
        )
    if last_year is not None and not last_year.empty:
        fig.add_trace(
            go.Scatter(
                x=pd.to_datetime(last_year["date"]) + pd.Timedelta(days=LAST_YEAR_DAYS),
                y=last_year["units"],
                mode="lines",
                line={"color": ORANGE, "dash": "dot"},
                name="same weekdays last year",
            )
        )
    for event in (events if events is not None else pd.DataFrame()).to_dict("records"):
        fig.add_vline(
            x=pd.Timestamp(event["date"]).timestamp() * 1000, line={"color": PURPLE, "dash": "dash", "width": 1}
        )
        fig.add_annotation(
            x=pd.Timestamp(event["date"]),
            y=1,
            yref="paper",
            text=event["event"],
            showarrow=False,
            textangle=-90,
            xanchor="right",
            yanchor="top",
            font={"size": 10, "color": PURPLE},
        )
    return _layout(fig, title, "units per day")


def wrmsse_over_time(scores: pd.DataFrame) -> go.Figure:
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=scores["forecast_date"], y=scores["wrmsse"], mode="lines+markers", line={"color": BLUE}, name="model"
        )
    )
    fig.add_trace(
        go.Scatter(
            x=scores["forecast_date"],
            y=scores["seasonal_naive_wrmsse"],
            mode="lines+markers",
            line={"color": ORANGE, "dash": "dash"},
            name="seasonal naive",
        )
    )
    return _layout(fig, "WRMSSE by forecast date (lower is better)", "WRMSSE", "forecast date")


def level_figures_over_time(scores: pd.DataFrame, level: int, name: str) -> go.Figure:
    """A level's WAPE and bias (left) and interval coverage (right, nominal dashed) by forecast date."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("WAPE and bias, %", "interval coverage, %"))
    lines = (("wape", "WAPE", BLUE, 1), ("bias", "bias", ORANGE, 1), ("coverage_80", "80 % band", GREEN, 2))
    for prefix, label, colour, col in (*lines, ("coverage_95", "95 % band", PURPLE, 2)):
        fig.add_trace(
            go.Scatter(
                x=scores["forecast_date"],
                y=scores[f"{prefix}_level_{level}"],
                mode="lines+markers",
                line={"color": colour},
                name=label,
            ),
            row=1,
            col=col,
        )
    for nominal, colour in ((80, GREEN), (95, PURPLE)):
        fig.add_hline(y=nominal, line={"color": colour, "dash": "dash", "width": 1}, row=1, col=2)
    fig.add_hline(y=0, line={"color": GREY, "width": 1}, row=1, col=1)
    return _layout(fig, f"Level {level} ({name}) by forecast date", "%", "forecast date")


def wrmsse_per_level(per_level: pd.Series, title: str) -> go.Figure:
    fig = go.Figure(go.Bar(x=[str(i) for i in per_level.index], y=per_level.values, marker_color=BLUE))
    return _layout(fig, title, "WRMSSE", "M5 level (1 total .. 12 item x store)")


def error_heatmap(errors: pd.DataFrame, title: str) -> go.Figure:
    grid = errors.pivot(index="store_id", columns="dept_id", values="wape")
    fig = go.Figure(
        go.Heatmap(
            z=grid.values,
            x=list(grid.columns),
            y=list(grid.index),
            colorscale="Cividis",
            colorbar={"title": "WAPE %"},
            hovertemplate="%{y} %{x}: %{z:.1f} %<extra></extra>",
        )
    )
    fig = _layout(fig, title, "store", "department")
    return fig.update_layout(margin_r=80)  # room for the colour bar beside the upright toolbar


SALES_WINDOW_MONTHS = 6  # what the sales explorer shows first


def sales_chart(history: pd.DataFrame, title: str) -> go.Figure:
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=history["date"], y=history["units"], mode="lines", line={"color": BLUE}, name="units"))
    fig.add_trace(
        go.Scatter(
            x=history["date"],
            y=history["sell_price"],
            mode="lines",
            line={"color": ORANGE},
            name="price ($)",
            yaxis="y2",
        )
    )
    snap = history[history["snap"] == 1]
    fig.add_trace(
        go.Scatter(
            x=snap["date"],
            y=[0] * len(snap),
            mode="markers",
            marker={"color": GREEN, "symbol": "line-ns-open"},
            name="SNAP day",
        )
    )
    events = history[history["event_name_1"].notna()]
    fig.add_trace(
        go.Scatter(
            x=events["date"],
            y=events["units"],
            mode="markers",
            marker={"color": VERMILION, "size": 8},
            text=events["event_name_1"],
            name="event",
        )
    )
    fig.update_layout(yaxis2={"title": "price ($)", "overlaying": "y", "side": "right"})
    fig = _layout(fig, title, "units per day")
    # Five years of daily points read as noise: open on the last six months, the rest a click away.
    if len(history):
        last = pd.Timestamp(max(history["date"]))
        fig.update_xaxes(
            range=[last - pd.DateOffset(months=SALES_WINDOW_MONTHS), last],
            rangeselector={
                "buttons": [
                    {"count": SALES_WINDOW_MONTHS, "label": "6 months", "step": "month", "stepmode": "backward"},
                    {"count": 1, "label": "1 year", "step": "year", "stepmode": "backward"},
                    {"label": "all", "step": "all"},
                ]
            },
        )
    return fig


def safety_stock_by_store(plan: pd.DataFrame, title: str) -> go.Figure:
    """Lead-time demand and the safety stock on top of it, per store."""
    by_store = plan.groupby("store_id")[["lead_time_demand", "safety_stock"]].sum().reset_index()
    fig = go.Figure()
    fig.add_trace(
        go.Bar(x=by_store["store_id"], y=by_store["lead_time_demand"], marker_color=BLUE, name="lead-time demand")
    )
    fig.add_trace(go.Bar(x=by_store["store_id"], y=by_store["safety_stock"], marker_color=ORANGE, name="safety stock"))
    fig.update_layout(barmode="stack")
    return _layout(fig, title, "units", "store")


def drift_bars(drift: pd.DataFrame, warn: float, fail: float, title: str) -> go.Figure:
    """The judged value per feature, largest first, with the warning and failure thresholds: the
    score (PSI beyond its no-change PSI, weighted by importance), or the PSI in partitions written
    before scores were."""
    judged = "score" if "score" in drift else "psi"
    # One bar trace per status, so the legend says what each colour means (grey: measured, not judged).
    fig = go.Figure()
    legend = {"ok": (BLUE, "ok"), "warn": (ORANGE, "warn"), "drift": (VERMILION, "drift")}
    shown_as = drift["status"].where(drift["status"].isin(list(legend)), "not judged")
    for status, rows in drift.groupby(shown_as, sort=False):
        colour, name = legend.get(str(status), (GREY, "measured, not judged (events)"))
        fig.add_trace(go.Bar(x=rows["feature"], y=rows[judged].fillna(0.0), marker_color=colour, name=name))
    fig.update_xaxes(
        categoryorder="array", categoryarray=drift["feature"].tolist()
    )  # largest first, whatever the status
    for value, label in ((warn, "warn"), (fail, "drift")):
        fig.add_hline(y=value, line_dash="dash", line_color=GREY, annotation_text=f"{label} {value:g}")
    return _layout(fig, title, "drift score" if judged == "score" else "population stability index", "feature")


def backtest_over_time(scores: pd.DataFrame) -> go.Figure:
    """WRMSSE of every backtest date: the issued forecast in bold, each peer beside it."""
    fig = go.Figure()
    colours = [ORANGE, GREEN, VERMILION, SKY, PURPLE, GREY]
    peers = sorted(m for m in scores["method"].unique() if m != "issued")
    for i, method in enumerate(peers):
        rows = scores[scores["method"] == method].sort_values("origin")
        fig.add_trace(
            go.Scatter(
                x=rows["origin"],
                y=rows["wrmsse"],
                mode="lines",
                name=method,
                line={"color": colours[i % len(colours)], "width": 1, "dash": "dot" if i >= len(colours) else "solid"},
            )
        )
    issued = scores[scores["method"] == "issued"].sort_values("origin")
    fig.add_trace(
        go.Scatter(
            x=issued["origin"],
            y=issued["wrmsse"],
            mode="lines+markers",
            line={"color": BLUE, "width": 3},
            name="issued",
        )
    )
    return _layout(fig, "Backtest WRMSSE by forecast date (lower is better)", "WRMSSE", "forecast date")
