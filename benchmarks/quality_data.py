"""Real series for the quality benchmark: River's AirlinePassengers, ETT (ETTh1/ETTh2 oil
temperature, alone and with the six load columns) and NAB (realKnownCause, realTraffic,
realAWSCloudwatch), read from ../shared/datasets beside the checkout; and any CSV."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import pathlib

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared" / "datasets"
ETT_LOADS = ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL"]


@dataclasses.dataclass
class Series:
    name: str
    values: list[float]
    times: list[dt.datetime] | None
    features: list[dict] | None = None  # exogenous inputs known at prediction time
    season: int | None = None  # steps per season (None: no seasonal naive)


def _parse_time(s):
    return dt.datetime.fromisoformat(s.strip())


def read_csv(path, value_column="value", time_column="timestamp", feature_columns=(), name=None,
             season=None) -> Series:
    values, times, feats = [], [], []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            values.append(float(row[value_column]))
            times.append(_parse_time(row[time_column]) if time_column else None)
            if feature_columns:
                feats.append({c: float(row[c]) for c in feature_columns})
    if season is None and time_column and len(times) > 2:
        step = (times[1] - times[0]).total_seconds()
        if step > 0 and 86400 % step == 0 and 86400 / step <= 400:
            season = int(86400 / step)  # daily
    return Series(name or pathlib.Path(path).stem, values, times if time_column else None,
                  feats if feature_columns else None, season)


def airline() -> Series:
    from river import datasets

    values, times = [], []
    for x, y in datasets.AirlinePassengers():
        values.append(float(y))
        times.append(x["month"])
    return Series("AirlinePassengers", values, times, None, 12)


def all_series(quick=False) -> list[Series]:
    out = [airline()]
    for name in ("ETTh1", "ETTh2"):
        path = SHARED / "ett" / f"{name}.csv"
        out.append(read_csv(path, "OT", "date", name=f"{name} OT", season=24))
        out.append(read_csv(path, "OT", "date", ETT_LOADS, name=f"{name} OT+loads", season=24))
    for folder in ("realKnownCause", "realTraffic", "realAWSCloudwatch"):
        for path in sorted((SHARED / "nab" / "data" / folder).glob("*.csv")):
            out.append(read_csv(path, name=f"{folder}/{path.stem}"))
    if quick:
        out = out[:1] + out[1:5:2] + out[5::4]
    return out
