"""The dashboard's charts as Vega-Lite specs (Altair), each carrying its rows inline.

Width follows the page ("container"), so the same spec fits a phone and a desktop; the PNG
preview pins a width instead (there is no page when vl-convert renders it).
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from solar_pipeline.reports.data import SiteReport, as_records

STATUS_COLOURS = alt.Scale(
    domain=["complete", "partial", "estimated"], range=["#2e7d32", "#f9a825", "#1e88e5"]
)
PARTS = alt.Scale(
    domain=[
        "Self-consumed",
        "Exported",
        "Imported",
        "Produced (split unknown)",
        "Consumed (split unknown)",
    ],
    range=["#f9a825", "#c0ca33", "#78909c", "#ffb300", "#90a4ae"],
)


def _data(frame: pd.DataFrame) -> alt.Data:
    return alt.Data(values=as_records(frame))


def last_30_days(site: SiteReport) -> alt.TopLevelMixin:
    """Two bars a day: production (used on site + exported) and consumption (used on site +
    imported); without export data production is one block, never a made-up split."""
    return (
        alt.Chart(_data(site.daily))
        .transform_calculate(
            sc="datum.self_consumed_kwh",
            split="datum.self_consumed_kwh != null && datum.imported_kwh != null",
        )
        .transform_calculate(
            p_self="datum.sc != null ? datum.sc : null",
            p_export="datum.sc != null ? datum.exported_kwh : null",
            p_whole="datum.sc == null ? datum.produced_kwh : null",
            c_self="datum.split ? datum.sc : null",
            c_import="datum.split ? datum.imported_kwh : null",
            c_whole="!datum.split ? datum.consumed_kwh : null",
        )
        .transform_fold(
            ["p_self", "p_export", "p_whole", "c_self", "c_import", "c_whole"], as_=["key", "kwh"]
        )
        .transform_filter("datum.kwh != null")
        .transform_calculate(
            bar="indexof(datum.key, 'p_') == 0 ? 'Produced' : 'Consumed'",
            part="{p_self: 'Self-consumed', c_self: 'Self-consumed', p_export: 'Exported', "
            "c_import: 'Imported', p_whole: 'Produced (split unknown)', "
            "c_whole: 'Consumed (split unknown)'}[datum.key]",
        )
        .mark_bar()
        .encode(
            x=alt.X("yearmonthdate(day):O", title=None, axis=alt.Axis(format="%d %b")),
            xOffset=alt.XOffset("bar:N", sort=["Produced", "Consumed"]),
            y=alt.Y("sum(kwh):Q", title="kWh"),
            color=alt.Color(
                "part:N", scale=PARTS, title=None, legend=alt.Legend(orient="top", columns=2)
            ),
            tooltip=[
                alt.Tooltip("yearmonthdate(day):T", title="day"),
                "bar:N",
                "part:N",
                alt.Tooltip("sum(kwh):Q", format=".2f", title="kWh"),
            ],
        )
        .properties(width="container", height=220, title="Last 30 days")
    )


def self_consumption(site: SiteReport) -> alt.TopLevelMixin:
    """The share of each day's production used on site (needs export data)."""
    return (
        alt.Chart(_data(site.daily))
        .mark_line(point=True, color="#6a1b9a")
        .encode(
            x=alt.X("yearmonthdate(day):O", title=None, axis=alt.Axis(format="%d %b")),
            y=alt.Y(
                "self_consumption_rate:Q",
                title="used on site",
                axis=alt.Axis(format="%"),
                scale=alt.Scale(domain=[0, 1]),
            ),
            tooltip=[
                alt.Tooltip("yearmonthdate(day):T", title="day"),
                alt.Tooltip("self_consumption_rate:Q", format=".0%", title="self-consumed"),
            ],
        )
        .properties(width="container", height=120, title="Self-consumption")
    )


def power_curve(site: SiteReport) -> alt.TopLevelMixin:
    """The latest day's mean power per interval, one line per source (gateway beside cloud)."""
    return (
        alt.Chart(_data(site.curve))
        .mark_line(interpolate="step-before")
        .encode(
            x=alt.X("local_end:T", title=f"{site.curve_day} ({site.timezone})"),
            y=alt.Y("watts:Q", title="W"),
            color=alt.Color("source:N", title=None, legend=alt.Legend(orient="top", columns=2)),
            tooltip=[alt.Tooltip("local_end:T", format="%H:%M"), "source:N", "watts:Q"],
        )
        .properties(width="container", height=220, title="Power on the latest day")
    )


def month_vs_last_year(site: SiteReport) -> alt.TopLevelMixin:
    return (
        alt.Chart(_data(site.monthly))
        .mark_bar()
        .encode(
            x=alt.X(
                "month_name:N",
                title=None,
                sort=alt.EncodingSortField("month_number", op="min"),
            ),
            xOffset="year:N",
            y=alt.Y("produced_kwh:Q", title="kWh produced"),
            color=alt.Color("year:N", title=None, legend=alt.Legend(orient="top")),
            tooltip=["year:N", "month_name:N", alt.Tooltip("produced_kwh:Q", format=".1f")],
        )
        .properties(width="container", height=220, title="Each month against a year earlier")
    )


def inverter_heatmap(site: SiteReport) -> alt.TopLevelMixin:
    """Inverter x day: a dead panel is a pale row, a shaded one a darker stripe."""
    return (
        alt.Chart(_data(site.inverters))
        .mark_rect()
        .encode(
            x=alt.X("yearmonthdate(day):O", title=None, axis=alt.Axis(format="%d %b")),
            y=alt.Y("label:N", title=None),
            color=alt.Color("wh:Q", title="Wh", scale=alt.Scale(scheme="yelloworangebrown")),
            tooltip=[
                alt.Tooltip("yearmonthdate(day):T", title="day"),
                "label:N",
                "serial_number:N",
                alt.Tooltip("wh:Q", format=".0f"),
            ],
        )
        .properties(width="container", title="Energy per inverter (Wh)")
    )


def quality_strip(site: SiteReport) -> alt.TopLevelMixin:
    return (
        alt.Chart(_data(site.quality))
        .mark_rect()
        .encode(
            x=alt.X("yearmonthdate(day):O", title=None, axis=alt.Axis(format="%d %b")),
            color=alt.Color("status:N", scale=STATUS_COLOURS, title=None),
            opacity=alt.Opacity("coverage:Q", scale=alt.Scale(domain=[0, 1], range=[0.35, 1])),
            tooltip=[
                alt.Tooltip("yearmonthdate(day):T", title="day"),
                "status:N",
                alt.Tooltip("coverage:Q", format=".0%"),
                "produced_source:N",
                "anomalies:Q",
            ],
        )
        .properties(width="container", height=36, title="Data quality")
    )
