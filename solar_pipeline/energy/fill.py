"""Filling an interval that an anomaly made unusable, from another source.

A wrapped, reset or spiking counter, or a vendor's negative, implausible or contradictory
value, gives no usable energy for the interval in which it happened. Rather than lose that
interval (a hole in an otherwise complete day), its energy is taken from the next source in
preference order that covers the same time span; the interval keeps its anomaly flag and says
where the energy came from (`filled_from:<source>`), or that none could (`left_out:<figure>`,
which keeps the day from counting as complete).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from solar_pipeline.energy.model import ANOMALIES, COMPLETE_COVERAGE, LEFT_OUT, Interval

__all__ = ["ANOMALIES", "energy_over", "fill_anomalies"]


def _overlap(a: Interval, start: datetime, end: datetime) -> float:
    return max(0.0, (min(a.end_at, end) - max(a.start_at, start)).total_seconds())


def energy_over(
    intervals: Sequence[Interval], source: str, figure: str, start: datetime, end: datetime
) -> float | None:
    """The source's energy over [start, end) if its usable intervals cover it, else None."""
    span = (end - start).total_seconds()
    covered = energy = 0.0
    for i in intervals:
        value = getattr(i, figure)
        if i.source != source or value is None or i.seconds <= 0:
            continue
        seconds = _overlap(i, start, end)
        if seconds:
            covered += seconds
            energy += value * seconds / i.seconds
    return energy if span and covered / span >= COMPLETE_COVERAGE else None


def fill_anomalies(
    intervals: Sequence[Interval], figure: str, preference: Sequence[str]
) -> list[Interval]:
    out = []
    for i in intervals:
        if getattr(i, figure) is not None or not any(f in ANOMALIES for f in i.flags):
            out.append(i)
            continue
        for other in preference:
            if other == i.source:
                continue
            value = energy_over(intervals, other, figure, i.start_at, i.end_at)
            if value is not None:
                filled: dict[str, Any] = {figure: value}
                i = replace(i, **filled, flags=(*i.flags, f"filled_from:{other}"))
                break
        else:
            if f"{LEFT_OUT}{figure}" not in i.flags:
                i = replace(i, flags=(*i.flags, f"{LEFT_OUT}{figure}"))
        out.append(i)
    return out
