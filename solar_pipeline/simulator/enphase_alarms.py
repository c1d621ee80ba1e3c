"""Events and alarms of the Enphase cloud simulator: the model's nightly incidents plus
incidents a test opens and clears (an alarm can stay open for a year).

Follows shared/reference/enphase-cloud-api-v4.md §3.13: `events` and `alarms` take a
`start_time`/`end_time` window of at most 7 days; `alarms` filters on `cleared` (default false);
`open_events` and `open_alarms` take no parameters and list everything open now, `open_events`
with status "open" in lower case, `open_alarms` without `cleared` and `alarm_end_time`.

Where Enphase is silent the simulator makes the uncertain part switchable: whether a window
selects the items that *started* in it ("start", the default) or every item *active* at some
moment of it ("overlap"). A client must be right under both.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from solar_pipeline.simulator import solar_model as model
from solar_pipeline.simulator.solar_model import SystemSpec

WindowMatch = Literal["start", "overlap"]
WINDOW_MATCHES: tuple[WindowMatch, ...] = ("start", "overlap")
# The model's incidents last at most 20 minutes; a day of margin finds every one that overlaps.
_MODEL_MARGIN_S = 86_400


@dataclass
class Incident:
    """A stateful event a test opened, escalated to an alarm at once; open until `end`."""

    system_id: int
    event_type_id: int
    serial_number: str
    severity: int
    start: int
    end: int | None = None

    @property
    def alarm_id(self) -> str:
        # Shaped like the reference's example alarm id "698957008.8.1766109572000".
        return f"{self.system_id}.{self.event_type_id}.{self.start * 1000}"

    def ended(self, now: int) -> bool:
        return self.end is not None and self.end <= now

    def event(self, now: int) -> dict[str, Any]:
        ended = self.ended(now)
        return {
            "status": "Closed" if ended else "Open",
            "event_type_id": self.event_type_id,
            "event_start_time": self.start,
            "event_end_time": self.end if ended else None,
            "serial_number": self.serial_number,
        }

    def alarm(self, now: int) -> dict[str, Any]:
        ended = self.ended(now)
        end = self.end if ended else None
        return {
            "id": self.alarm_id,
            "cleared": ended,
            "severity": self.severity,
            "event_type_id": self.event_type_id,
            "alarm_start_time": self.start,
            "alarm_end_time": end,
            "events": [
                {"serial_number": self.serial_number, "start_date": self.start, "end_date": end}
            ],
        }


def _in_window(
    item_start: int, item_end: int | None, start: int, end: int, match: WindowMatch
) -> bool:
    if match == "start":
        return start <= item_start < end
    return item_start < end and (item_end is None or item_end >= start)


class AlarmBoard:
    """What the events/alarms endpoints of one simulator answer at a given moment."""

    def __init__(self, match: WindowMatch = "start") -> None:
        if match not in WINDOW_MATCHES:
            raise ValueError(f"window match {match!r}: use one of {', '.join(WINDOW_MATCHES)}")
        self.match = match
        self._lock = threading.Lock()
        self._incidents: list[Incident] = []

    # ---- test controls ---------------------------------------------------------------------

    def raise_alarm(self, incident: Incident) -> str:
        with self._lock:
            if any(i.alarm_id == incident.alarm_id for i in self._incidents):
                raise ValueError(f"alarm {incident.alarm_id} is already raised")
            self._incidents.append(incident)
        return incident.alarm_id

    def clear_alarm(self, alarm_id: str, at: int) -> None:
        with self._lock:
            for incident in self._incidents:
                if incident.alarm_id == alarm_id:
                    if at < incident.start:
                        raise ValueError(f"alarm {alarm_id} cannot clear before it started")
                    incident.end = at
                    return
        raise KeyError(f"no alarm {alarm_id} was raised")

    def _visible(self, system_id: int, now: int) -> list[Incident]:
        with self._lock:
            return [i for i in self._incidents if i.system_id == system_id and i.start <= now]

    # ---- answers ---------------------------------------------------------------------------

    def _window(
        self,
        spec: SystemSpec,
        start: int,
        end: int,
        now: int,
        from_model: Callable[[SystemSpec, int, int, int], list[dict]],
        of_incident: Callable[[Incident, int], dict],
        times: tuple[str, str],
    ) -> list[dict]:
        lo = start - _MODEL_MARGIN_S if self.match == "overlap" else start
        found = from_model(spec, lo, end, now) + [
            of_incident(i, now) for i in self._visible(spec.system_id, now)
        ]
        begin, finish = times
        return sorted(
            (f for f in found if _in_window(f[begin], f[finish], start, end, self.match)),
            key=lambda f: f[begin],
        )

    def events(self, spec: SystemSpec, start: int, end: int, now: int) -> list[dict]:
        return self._window(
            spec,
            start,
            end,
            now,
            model.events_between,
            Incident.event,
            ("event_start_time", "event_end_time"),
        )

    def alarms(self, spec: SystemSpec, start: int, end: int, now: int) -> list[dict]:
        return self._window(
            spec,
            start,
            end,
            now,
            model.alarms_between,
            Incident.alarm,
            ("alarm_start_time", "alarm_end_time"),
        )

    def open_events(self, spec: SystemSpec, now: int) -> list[dict]:
        recent = model.events_between(spec, now - _MODEL_MARGIN_S, now + 1, now)
        found = recent + [i.event(now) for i in self._visible(spec.system_id, now)]
        # `open_events` spells the status in lower case, unlike `events` (reference §3.13).
        return [
            {**e, "status": "open"}
            for e in sorted(found, key=lambda e: e["event_start_time"])
            if e["event_end_time"] is None
        ]

    def open_alarms(self, spec: SystemSpec, now: int) -> list[dict]:
        recent = model.alarms_between(spec, now - _MODEL_MARGIN_S, now + 1, now)
        found = recent + [i.alarm(now) for i in self._visible(spec.system_id, now)]
        # `open_alarms` omits `cleared` and `alarm_end_time` (reference §3.13).
        return [
            {k: v for k, v in a.items() if k not in ("cleared", "alarm_end_time")}
            for a in sorted(found, key=lambda a: a["alarm_start_time"])
            if not a["cleared"]
        ]
