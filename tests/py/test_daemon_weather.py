"""Acceptance: a weather network of 50 stations recorded by the real daemon.

`h5rec simulate weather` sends line protocol over TCP as fast as it can and
keeps a copy of every byte (--tee). The test parses that copy itself and
requires every station group, every sample and every timestamp to be in the
file exactly once, as float32, and xarray to decode each station's table with
both netCDF engines.
"""
from collections import defaultdict

import h5py
import numpy as np
import xarray as xr

from recorder_fixture import T0, attr_str, run_client
from recorder_fixture import recorder  # noqa: F401 (pytest fixture)

CHANNELS = ("temperature", "wind", "pressure", "humidity")
STATIONS = 50
LINES = 6000

WEATHER = """
- name: weather
  match: { measurement: weather }
  group: "/{station}"
  layout: table
  attrs: { institution: "Example Lab" }
  defaults: { dtype: float32, chunk: 256, compression: deflate, level: 4, shuffle: true }
  channels:
    temperature: { units: degC, dt: 10 }
    wind:        { units: "m/s", dt: 5 }
    pressure:    { units: hPa, dt: 60 }
    humidity:    { units: "%", dt: 60 }
"""


def parse_sent(path):
    """{station: {"time": [...], channel: [...]}} from the line protocol sent."""
    sent = defaultdict(lambda: defaultdict(list))
    with open(path) as f:
        for line in f:
            head, fields, ts = line.split(" ")
            measurement, _, tag = head.partition(",")
            assert measurement == "weather" and tag.startswith("station=")
            station = sent[tag[len("station="):]]
            station["time"].append(int(ts))
            for field in fields.split(","):
                name, _, value = field.partition("=")
                station[name].append(float(value))
    return sent


def test_fifty_stations_every_sample_once(recorder, tmp_path):
    rec = recorder(WEATHER, listen=[{"protocol": "line", "transport": "tcp"}])
    tee = tmp_path / "sent.txt"
    run_client(["simulate", "weather", "--stations", STATIONS, "--count", LINES, "--rate", 0,
                "--t0", T0, "--tee", tee, "-t", rec.address()])
    log = rec.stop()
    assert "bad_lines" not in log and "warning" not in log, log

    sent = parse_sent(tee)
    assert len(sent) == STATIONS
    assert sum(len(s["time"]) for s in sent.values()) == LINES
    path = rec.the_file()
    with h5py.File(path, "r") as f:
        assert sorted(f.keys()) == sorted(sent.keys())
        for station, expect in sent.items():
            g = f[station]
            assert attr_str(g.attrs["station"]) == station
            assert attr_str(g.attrs["institution"]) == "Example Lab"
            time = g["time"][...]
            # Every timestamp exactly once, in the order sent.
            np.testing.assert_array_equal(time, np.array(expect["time"], dtype=np.int64))
            assert len(np.unique(time)) == len(time)
            assert attr_str(g["time"].attrs["units"]) == "nanoseconds since 1970-01-01T00:00:00Z"
            for name in CHANNELS:
                ds = g[name]
                assert ds.dtype == np.float32
                assert ds.shape == time.shape, (station, name)
                np.testing.assert_array_equal(
                    ds[...], np.array(expect[name], dtype=np.float64).astype(np.float32),
                    err_msg=f"/{station}/{name}")
                assert ds.attrs["start_time"] == expect["time"][0]
                assert ds.attrs["end_time"] == expect["time"][-1]

    # xarray, through both netCDF engines, sees each station as a table
    # indexed by decoded time.
    for engine in ("netcdf4", "h5netcdf"):
        for station, expect in sent.items():
            with xr.open_dataset(path, group=f"/{station}", engine=engine) as ds:
                assert ds["time"].dtype == np.dtype("datetime64[ns]"), (engine, station, ds)
                assert list(ds.dims) == ["time"]
                np.testing.assert_array_equal(
                    ds["time"].values, np.array(expect["time"], dtype="datetime64[ns]"))
                for name in CHANNELS:
                    assert ds[name].dims == ("time",)
                    np.testing.assert_array_equal(
                        ds[name].values, np.array(expect[name]).astype(np.float32))
