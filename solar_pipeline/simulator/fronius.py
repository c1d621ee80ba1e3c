"""A Fronius Solar API v1 simulator: a Datamanager (Symo) or a GEN24/Tauro over real HTTP.

Speaks the documented envelope (Head.Status.Code/Reason, Head.Timestamp, Body.Data) on
/solar_api/v1/. The truth is solar_model's 5-minute micro production of the site (the same
numbers the Enphase simulators serve for that SystemSpec):
  - E_Total is the lifetime Wh of the intervals ended by the last 5-minute boundary (the
    documentation says GEN24 updates it every 5 minutes; the Datamanager is modelled alike);
  - Datamanager: E_Day/E_Year filled, GetArchiveData serves Detail (per 5-minute interval, key
    = seconds from Start to the interval's start) and DailySum (key = seconds from Start to the
    local midnight); Head.Timestamp in site-local time with its offset;
  - GEN24/Tauro: E_Day/E_Year null, GetArchiveData 404, Head.Timestamp in UTC.
What the documentation leaves open is marked "inferred" below.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, Response, request
from werkzeug.wrappers import Response as BaseResponse

from solar_pipeline.simulator import solar_model as model
from solar_pipeline.simulator.envoy import LiveModel
from solar_pipeline.simulator.faults import ArmsHttpFaults
from solar_pipeline.simulator.server import WsgiSimulator
from solar_pipeline.simulator.solar_model import SystemSpec

MODELS = ("datamanager", "gen24")
STEP = model.MICRO_STEP
# Inferred: not in the documentation; peers split archive queries into 15-16 day chunks.
MAX_ARCHIVE_DAYS = 16
DISABLED_TEXT = "Solar API disabled by customer config"
DEVICE_TYPE = {"datamanager": 123, "gen24": 1}  # 123 = Symo 8.2-3-M; GEN24 always reports 1


class FroniusSimulator(ArmsHttpFaults, WsgiSimulator):
    thread_name = "fronius-sim"
    fault_status = 503

    def __init__(
        self,
        spec: SystemSpec | None = None,
        *,
        model_name: str = "datamanager",
        clock: Callable[[], float] = time.time,
        max_archive_days: int = MAX_ARCHIVE_DAYS,
        solar_api_enabled: bool = True,
    ) -> None:
        if model_name not in MODELS:
            raise ValueError(f"model_name must be one of {MODELS}, got {model_name!r}")
        self.spec = spec or SystemSpec()
        self.model_name = model_name
        self.clock = clock
        self.max_archive_days = max_archive_days
        self.solar_api_enabled = solar_api_enabled
        self.zone = ZoneInfo(self.spec.timezone)
        self.live = LiveModel(self.spec)
        self.requests: list[str] = []  # "endpoint?query" of every request, in order
        self.base_url = ""
        self._lock = threading.Lock()
        ArmsHttpFaults.__init__(self)
        self.app = self._build_app()

    # ---- test controls and truth -----------------------------------------------------------

    def truth_wh(self, day: date) -> int:
        """True AC production of the site's local day (what the 5-minute archive sums to)."""
        return model.daily_totals(self.spec, day)["micro_wh"]

    def e_total_at(self, now: float) -> int:
        return self.live.micro_until(int(now) // STEP * STEP)[0]

    # ---- envelope --------------------------------------------------------------------------

    def _stamp(self, now: float) -> str:
        # Documented: GEN24 answers in UTC; a Datamanager in the PV system's local time.
        tz = UTC if self.model_name == "gen24" else self.zone
        return datetime.fromtimestamp(int(now), tz).isoformat()

    def _answer(
        self, data: Any, now: float, args: dict[str, Any], code: int = 0, reason: str = ""
    ) -> Response:
        doc = {
            "Body": {"Data": data},
            "Head": {
                "RequestArguments": args,
                "Status": {"Code": code, "Reason": reason, "UserMessage": ""},
                "Timestamp": self._stamp(now),
            },
        }
        return Response(json.dumps(doc, indent=3), 200, content_type="application/json")

    # ---- the API ---------------------------------------------------------------------------

    def _build_app(self) -> Flask:
        app = Flask("fronius-sim")
        self.install_misbehaviour(app)

        @app.before_request
        def gate() -> BaseResponse | None:
            path = request.path
            with self._lock:
                self.requests.append(f"{path}?{request.query_string.decode()}")
            answer = self._fault_answer(path)
            if answer is not None:
                return answer
            if not self.solar_api_enabled:
                return Response(DISABLED_TEXT, 404, content_type="text/plain")
            return None

        @app.get("/solar_api/GetAPIVersion.cgi")
        def api_version() -> Response:
            doc = {"APIVersion": 1, "BaseURL": "/solar_api/v1/", "CompatibilityRange": "1.5-18"}
            return Response(json.dumps(doc), 200, content_type="application/json")

        @app.get("/solar_api/v1/GetPowerFlowRealtimeData.fcgi")
        def power_flow() -> Response:
            now = self.clock()
            return self._answer(self._power_flow(now), now, {})

        @app.get("/solar_api/v1/GetInverterRealtimeData.cgi")
        def inverter() -> Response:
            now = self.clock()
            args = {"DeviceClass": "Inverter", "Scope": request.args.get("Scope", "")}
            if request.args.get("Scope") != "System":
                return self._answer({}, now, args, 6, "only Scope=System is simulated")
            return self._answer(self._inverter_system(now), now, args)

        @app.get("/solar_api/v1/GetMeterRealtimeData.cgi")
        def meter() -> Response:
            now = self.clock()
            args = {"DeviceClass": "Meter", "Scope": request.args.get("Scope", "")}
            if request.args.get("Scope") != "System":
                return self._answer({}, now, args, 6, "only Scope=System is simulated")
            return self._answer(self._meter_system(now), now, args)

        @app.get("/solar_api/v1/GetArchiveData.cgi")
        def archive() -> Response:
            if self.model_name == "gen24":
                # Documented: GEN24/Tauro/Verto "NEVER" offer it; unavailable means HTTP 404.
                return Response("Not Found", 404, content_type="text/plain")
            return self._archive(self.clock())

        return app

    def _power_flow(self, now: float) -> dict[str, Any]:
        boundary = int(now) // STEP * STEP
        total, today, _, _ = self.live.micro_until(boundary)
        pv = float(self.live.micro_power(boundary + STEP))
        snap = self.live.snapshot(now)
        load = snap.consumption_w
        gen24 = self.model_name == "gen24"
        e_day = None if gen24 else float(today)
        e_year = None if gen24 else float(self._year_wh(boundary, today))
        site = {
            "E_Day": e_day,
            "E_Total": float(total),
            "E_Year": e_year,
            "Meter_Location": "grid",
            "Mode": "meter",
            "P_Akku": None,
            "P_Grid": round(load - pv, 2),
            "P_Load": round(-load, 2),
            "P_PV": pv,
            "rel_Autonomy": round(min(100.0, 100 * pv / load), 2) if load else None,
            "rel_SelfConsumption": round(min(100.0, 100 * load / pv), 2) if pv else None,
        }
        inverter = {"DT": DEVICE_TYPE[self.model_name], "E_Day": e_day, "E_Total": float(total)}
        inverter.update({"E_Year": e_year, "P": pv})
        return {"Inverters": {"1": inverter}, "Site": site, "Version": "12"}

    def _year_wh(self, boundary: int, today: int) -> int:
        day = model.local_date(self.spec, boundary)
        jan1 = date(day.year, 1, 1)
        return int(self.live.cum_before(day)[0] - self.live.cum_before(jan1)[0] + today)

    def _inverter_system(self, now: float) -> dict[str, Any]:
        boundary = int(now) // STEP * STEP
        total, today, _, _ = self.live.micro_until(boundary)
        data: dict[str, Any] = {
            "PAC": {"Unit": "W", "Values": {"1": self.live.micro_power(boundary + STEP)}},
            "TOTAL_ENERGY": {"Unit": "Wh", "Values": {"1": total}},
        }
        if self.model_name == "datamanager":
            # Inferred for GEN24: day/year values absent there as in the power flow.
            data["DAY_ENERGY"] = {"Unit": "Wh", "Values": {"1": today}}
            year = self._year_wh(boundary, today)
            data["YEAR_ENERGY"] = {"Unit": "Wh", "Values": {"1": year}}
        return data

    def _meter_system(self, now: float) -> dict[str, Any]:
        snap = self.live.snapshot(now)
        return {
            "0": {
                "Details": {"Manufacturer": "Fronius", "Model": "Smart Meter 63A", "Serial": "1"},
                "Enable": 1,
                "EnergyReal_WAC_Sum_Consumed": round(snap.import_lifetime),
                "EnergyReal_WAC_Sum_Produced": round(snap.export_lifetime),
                "Meter_Location_Current": 0,
                "PowerReal_P_Sum": round(snap.consumption_w - snap.production_w, 2),
                "TimeStamp": int(now),
                "Visible": 1,
            }
        }

    def _archive(self, now: float) -> Response:
        args: dict[str, Any] = {
            "Channel": request.args.getlist("Channel"),
            "EndDate": request.args.get("EndDate", ""),
            "HumanReadable": request.args.get("HumanReadable", "True"),
            "Scope": request.args.get("Scope", ""),
            "SeriesType": request.args.get("SeriesType", "Detail"),
            "StartDate": request.args.get("StartDate", ""),
        }
        try:
            first = _parse_date(args["StartDate"])
            last = _parse_date(args["EndDate"])
        except ValueError as exc:
            return self._answer({}, now, args, 6, str(exc))
        if args["Scope"] != "System" or not args["Channel"] or last < first:
            return self._answer({}, now, args, 6, "invalid Scope, Channel or date range")
        if args["SeriesType"] not in ("Detail", "DailySum"):
            return self._answer({}, now, args, 6, f"unknown SeriesType {args['SeriesType']}")
        if (last - first).days + 1 > self.max_archive_days:
            # Inferred status and wording; the limit itself is what peers report.
            reason = f"Query timespan must not exceed {self.max_archive_days} days"
            return self._answer({}, now, args, 255, reason)
        start, _ = model.local_day_bounds(self.spec, first)
        _, end = model.local_day_bounds(self.spec, last)
        upto = min(end, int(now))
        channels: dict[str, Any] = {}
        if "EnergyReal_WAC_Sum_Produced" in args["Channel"]:
            if args["SeriesType"] == "Detail":
                values = {
                    str(i["end_at"] - STEP - start): i["enwh"]
                    for i in model.micro_intervals(self.spec, start, upto)
                }
            else:
                values = {}
                day = first
                while day <= last:
                    day_start, day_end = model.local_day_bounds(self.spec, day)
                    if day_end <= upto:  # a day is summed once it is over
                        values[str(day_start - start)] = self.truth_wh(day)
                    day += timedelta(days=1)
            channels["EnergyReal_WAC_Sum_Produced"] = {"Unit": "Wh", "Values": values}
        node = {
            "Data": channels,
            "DeviceType": DEVICE_TYPE[self.model_name],
            "End": datetime.fromtimestamp(end - 1, self.zone).isoformat(),
            "NodeType": 97,
            "Start": datetime.fromtimestamp(start, self.zone).isoformat(),
        }
        return self._answer({"inverter/1": node}, now, args)


def _parse_date(raw: str) -> date:
    """The documented date spellings: 21.5.2014, 5/21/2014, 2014-5-21 (or an RFC 3339 prefix)."""
    text = raw.strip()
    try:
        if "." in text:
            d, m, y = text.split(".")
            return date(int(y), int(m), int(d))
        if "/" in text:
            m, d, y = text.split("/")
            return date(int(y), int(m), int(d))
        y, m, d = text[:10].split("-")
        return date(int(y), int(m), int(d))
    except ValueError:
        raise ValueError(f"cannot parse date {raw!r}") from None


__all__ = ["FroniusSimulator"]
