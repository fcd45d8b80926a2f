"""Time order and late data, said and counted (issue 15 §3).

Rows are stored in arrival order. A late station, a back-filled day or a
repeated reading leave a group's time axis unsorted or with repeated times
(xarray's sel/resample then raise); timestamps in 1970 (seconds sent to a
nanosecond listener) or 2100 were taken silently. Now: per group the
recorder counts rows not later than an earlier row and rows outside
output.time_window around their receive time (`h5rec status`, text and
JSON), may reject the latter, and each group records in every file whether
its time axes are strictly increasing (`time_monotonic`, kept current at
each flush, at roll and at close). `h5rec info` shows the true time span.
Checked with h5py, netCDF4, xarray's two engines and ncdump.
"""
import json
import socket
import subprocess
import time

import h5py
import netCDF4
import numpy as np
import xarray as xr

from recorder_fixture import DATA, EVENT, SEC, encode_frame, run_client
from recorder_fixture import recorder  # noqa: F401 (pytest fixture)
from reliability_helpers import wait_for

TABLE = """
- name: lab
  match: { measurement: lab }
  group: "/{bench}"
  layout: table
  channels:
    temp: { dtype: float32 }
"""

FRAMES = """
- name: dust
  match: { key: "dust/{channel}" }
  group: /dust
  layout: records
  samples: 2
  dt: 1.0e-3
  event_fields: { mass: float32 }
  channels:
    a: { dtype: float32 }
- name: adc
  match: { key: "adc/{channel}" }
  group: /adc
  layout: stream
  channels:
    x: { dtype: int16, dt: 1.0e-3 }
"""


def send_lines(rec, lines):
    before = rec.status()["counters"]["lines"]
    with socket.create_connection(rec.bound[0][1], timeout=30) as sock:
        sock.sendall("".join(lines).encode())
    wait_for(lambda: rec.status()["counters"]["lines"] == before + len(lines), what="lines")


def time_status(rec, key, value):
    """The status's time figures once the writer has counted KEY up to VALUE
    (they are published at its next tick)."""
    return wait_for(lambda: (lambda t: t if t[key] == value else None)(rec.status()["time"]),
                    what=f"time.{key} == {value}")


def line(bench, t, value=1.0):
    return f"lab,bench={bench} temp={value} {t}\n"


def monotonic_attr(path, group, live=False):
    kw = {"libver": "latest", "swmr": True} if live else {}
    with h5py.File(path, "r", **kw) as f:
        return int(f[group].attrs["time_monotonic"])


def test_rows_back_in_time_are_counted_and_recorded_per_file(recorder):
    rec = recorder(TABLE, listen=[{"protocol": "line", "transport": "tcp"}])
    now = time.time_ns() // SEC * SEC
    # b1: 2nd row goes back, 4th repeats a time; b2 in order
    send_lines(rec, [line("b1", now - 10 * SEC), line("b1", now - 8 * SEC),
                     line("b1", now - 9 * SEC), line("b1", now - 8 * SEC),
                     line("b1", now - 7 * SEC),
                     line("b2", now - 10 * SEC), line("b2", now - 9 * SEC)])
    st = time_status(rec, "not_increasing", 2)
    assert st["implausible"] == 0 and st["rejected"] == 0, st
    assert st["groups"] == [{"group": "/b1", "not_increasing": 2, "implausible": 0,
                             "rejected": 0}], st
    text = rec.control("status").stdout
    assert "time: 2 rows not after an earlier one, 0 outside" in text, text
    assert "/b1" in text and "2 not after an earlier row" in text, text

    rec.control("flush")  # the attribute is current at every flush (live file)
    first = rec.the_file()
    assert monotonic_attr(first, "b1", live=True) == 0
    assert monotonic_attr(first, "b2", live=True) == 1

    rec.control("roll")  # a new file judges its own rows
    send_lines(rec, [line("b1", now - 5 * SEC), line("b1", now - 4 * SEC),
                     line("b2", now - 5 * SEC), line("b2", now - 6 * SEC)])
    rec.stop()
    files = rec.files()
    assert len(files) == 2, files
    second = [p for p in files if p != first][0]
    assert monotonic_attr(first, "b1") == 0 and monotonic_attr(first, "b2") == 1
    assert monotonic_attr(second, "b1") == 1 and monotonic_attr(second, "b2") == 0

    with netCDF4.Dataset(first) as nc:
        assert nc["b1"].getncattr("time_monotonic") == 0
        assert nc["b2"].getncattr("time_monotonic") == 1
    for engine in ("netcdf4", "h5netcdf"):
        with xr.open_dataset(first, group="/b1", engine=engine) as ds:
            assert ds.attrs["time_monotonic"] == 0, engine
            assert not ds.indexes["time"].is_monotonic_increasing, engine
        with xr.open_dataset(first, group="/b2", engine=engine) as ds:
            assert ds.attrs["time_monotonic"] == 1, engine
            assert ds.indexes["time"].is_monotonic_increasing, engine
    dump = subprocess.run(["ncdump", "-h", first], capture_output=True, text=True,
                          timeout=60, check=True).stdout
    assert ":time_monotonic = 0b" in dump and ":time_monotonic = 1b" in dump, dump

    # h5rec info: the span is the true min/max, not the first and last row
    info = json.loads(run_client(["info", "--json", second]).stdout)
    axes = {d["name"]: d for d in info["datasets"] if d["name"].endswith("/time")}
    b2 = axes["/b2/time"]
    assert (b2["min_time"], b2["max_time"]) == (now - 6 * SEC, now - 5 * SEC), b2
    assert (b2["first_time"], b2["last_time"]) == (now - 5 * SEC, now - 6 * SEC), b2
    assert b2["monotonic"] is False and axes["/b1/time"]["monotonic"] is True
    text = run_client(["info", second]).stdout
    assert "(not in time order)" in text, text


def test_implausible_times_are_counted_and_by_default_kept(recorder):
    rec = recorder(TABLE, listen=[{"protocol": "line", "transport": "tcp"}])
    now = time.time_ns()
    seconds = now // SEC  # seconds sent to a nanosecond listener: 1970
    send_lines(rec, [line("b1", now), line("b1", seconds),
                     line("b1", 4102444800 * SEC)])  # 2100-01-01
    st = time_status(rec, "implausible", 2)
    assert st["rejected"] == 0, st
    assert (st["window_past"], st["window_future"], st["window_reject"]) == (
        "3650d", "1d", False), st
    assert st["groups"][0]["group"] == "/b1" and st["groups"][0]["implausible"] == 2, st
    rec.stop()
    assert "2 more rows with a timestamp outside output.time_window" in rec.log()
    with h5py.File(rec.the_file(), "r") as f:
        np.testing.assert_array_equal(f["b1/time"][...], [now, seconds, 4102444800 * SEC])


def test_check_prints_the_time_window(tmp_path):
    schema = tmp_path / "s.yaml"
    schema.write_text("name: s\noutput: { time_window: { past: 7d, reject: true } }\n"
                      "listen:\n  - { protocol: line, transport: tcp, address: \"7609\" }\n"
                      "streams:" + "\n".join("  " + l for l in TABLE.splitlines()) + "\n")
    out = run_client(["check", schema]).stdout
    assert "time_window  7d before to 1d after receipt; rows outside are counted and " \
           "rejected" in out, out


def test_implausible_times_can_be_rejected(recorder):
    rec = recorder(TABLE, listen=[{"protocol": "line", "transport": "tcp"}],
                   output={"time_window": "{ past: 2h, future: 10min, reject: true }"})
    now = time.time_ns()
    send_lines(rec, [line("b1", now - 3600 * SEC, 1.0), line("b1", now - 3 * 3600 * SEC, 2.0),
                     line("b1", now + 3600 * SEC, 3.0), line("b1", now, 4.0)])
    st = time_status(rec, "rejected", 2)
    assert st["implausible"] == 2, st
    assert (st["window_past"], st["window_future"], st["window_reject"]) == (
        "2h", "10min", True), st
    rec.stop()
    with h5py.File(rec.the_file(), "r") as f:
        np.testing.assert_array_equal(f["b1/temp"][...], [1.0, 4.0])
        assert f["b1"].attrs["time_monotonic"] == 1


def test_frames_records_and_stream_time_order(recorder):
    rec = recorder(FRAMES, listen=[{"protocol": "frame", "transport": "tcp"}])
    now = time.time_ns()
    wave = np.zeros(2, dtype="<f4").tobytes()
    frames, seq = b"", 0
    # events 1 and 3 in order, event 2 earlier than event 1: the records'
    # time axis goes back; the stream's frames stay in order
    for e, t in ((1, now - 5 * SEC), (2, now - 6 * SEC), (3, now - 4 * SEC)):
        seq += 1
        frames += encode_frame(DATA, "dust/a", wave, dtype=9, seq=seq, t0=t, event_id=e)
        seq += 1
        frames += encode_frame(EVENT, "dust", b"mass=1.5", seq=seq, t0=t, event_id=e)
    for k in range(3):
        seq += 1
        frames += encode_frame(DATA, "adc/x", np.arange(4, dtype="<i2").tobytes(), dtype=3,
                               seq=seq, t0=now - (3 - k) * SEC)
    with socket.create_connection(rec.bound[0][1], timeout=30) as sock:
        sock.sendall(frames)
    wait_for(lambda: rec.status()["counters"]["frames"] == seq, what="frames")
    st = time_status(rec, "not_increasing", 1)
    assert st["implausible"] == 0, st
    assert [g["group"] for g in st["groups"]] == ["/dust"], st
    rec.stop()
    path = rec.the_file()
    with h5py.File(path, "r") as f:
        assert f["dust"].attrs["time_monotonic"] == 0
        assert f["adc"].attrs["time_monotonic"] == 1
    for engine in ("netcdf4", "h5netcdf"):
        with xr.open_dataset(path, group="/dust", engine=engine) as ds:
            assert ds.attrs["time_monotonic"] == 0, engine
