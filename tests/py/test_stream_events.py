"""Events inside continuous streams (issue 14 §2), with the real daemon.

A `layout: stream` with `events: true` keeps the samples exactly as any
stream does and adds an event table per group (docs/engine.md, "Events in
a stream"): DATA frames with an event_id mark their samples as that
event's, EVENT frames aimed at the group carry its fields, and both may
come in any order, interleaved with other events and with frames of no
event (event_id 0).

- The Python Sender sends both kinds over TCP; h5py finds every event's
  samples by slicing the channels with the table's first index and count,
  exactly as sent, and the samples stay one continuous stream.
- xarray (netcdf4 and h5netcdf engines), netCDF4 and ncdump read the
  table as variables on their own `event_time` dimension, with the
  fields' units and _FillValue (an event whose EVENT frame never came).
- `h5rec send --event` records an event from the command line.
- An event open when its file rolls has a row in each file, each on that
  file's samples; h5rec.reader.open_group joins them with the samples.
"""
import os
import subprocess
import sys

import h5py
import netCDF4
import numpy as np
import xarray as xr

from recorder_fixture import SEC, SOURCE, T0, run_client, sent_summary
from recorder_fixture import recorder  # noqa: F401 (pytest fixture)
from reliability_helpers import wait_for

sys.path.insert(0, os.path.join(SOURCE, "python"))
import h5rec  # noqa: E402

ADC = """
- name: adc
  match: { key: "{board}/{channel}" }
  group: "/{board}"
  layout: stream
  events: true
  record_timeout: 2s
  event_fields:
    trigger_level: { dtype: float32, units: V, long_name: "trigger threshold" }
    hits: int32
  defaults: { dtype: int16, dt: 1.0e-6, chunk: 256 }
  channels:
    adc0: {}
    adc1: { dtype: float32, compression: deflate }
"""
FRAME_TCP = [{"protocol": "frame", "transport": "tcp"}]
US = 1000


def frame(channel, k, n):
    """The samples of frame K on CHANNEL: distinct everywhere."""
    if channel == "adc0":
        return (np.arange(n, dtype=np.int16) + 1000 * k).astype(np.int16)
    return np.linspace(k, k + 1, n, dtype=np.float32)


# (channel, event_id, samples) in the order sent; EVENT frames in between
# as ("EVENT", event_id, None). Event 3 sends its EVENT frame first, event
# 1 last; event 4 never sends one; frames of no event (0) come in between.
PLAN = [
    ("adc0", 0, 300),
    ("EVENT", 3, None),
    ("adc0", 1, 200),
    ("adc1", 1, 50),
    ("adc1", 2, 40),
    ("adc0", 1, 100),   # event 1 goes on: its count grows
    ("adc1", 0, 10),
    ("adc0", 2, 120),
    ("adc1", 3, 70),
    ("EVENT", 2, None),
    ("adc0", 3, 80),
    ("adc0", 0, 33),
    ("adc0", 4, 60),
    ("EVENT", 1, None),
    ("adc1", 0, 5),
]
FIELDS = {1: (0.25, 11), 2: (0.5, 22), 3: (-1.5, 33)}


def send_plan(sender):
    """Send PLAN; returns what each channel holds and, per event and
    channel, the samples that are the event's."""
    sent = {"adc0": [], "adc1": []}
    events = {}
    for k, (channel, event_id, n) in enumerate(PLAN):
        t0 = T0 + k * 1000 * US
        if channel == "EVENT":
            level, hits = FIELDS[event_id]
            sender.event("b1", {"trigger_level": level, "hits": hits}, t0=t0,
                         event_id=event_id)
            continue
        data = frame(channel, k, n)
        sender.send(f"b1/{channel}", data, t0=t0, event_id=event_id)
        sent[channel].append(data)
        if event_id:
            events.setdefault(event_id, {}).setdefault(channel, []).append(data)
    return ({c: np.concatenate(v) for c, v in sent.items()},
            {e: {c: np.concatenate(v) for c, v in chans.items()} for e, chans in events.items()})


def record_plan(recorder):
    rec = recorder(ADC, listen=FRAME_TCP, output={"flush": "200ms"})
    with h5rec.Sender(rec.address(0), name="pytest") as s:
        sent, events = send_plan(s)
        s.wait(timeout=60)
    # every event closes record_timeout after its first frame
    wait_for(lambda: rec.status()["engine"]["events_closed"] == 4, what="the events' close")
    engine = rec.status()["engine"]
    assert engine["events_without_fields"] == 1, engine
    rec.stop()
    return rec.the_file(), sent, events


def event_time(event_id):
    """When the event's EVENT frame was sent, else its first DATA frame."""
    first = None
    for k, (channel, e, _) in enumerate(PLAN):
        if e != event_id:
            continue
        if channel == "EVENT":
            return T0 + k * 1000 * US
        if first is None:
            first = T0 + k * 1000 * US
    return first


def test_event_samples_are_slices_of_the_stream(recorder):
    path, sent, events = record_plan(recorder)
    with h5py.File(path, "r") as f:
        g = f["b1"]
        # the stream itself is unchanged: every frame, in order
        for channel in ("adc0", "adc1"):
            np.testing.assert_array_equal(g[channel][...], sent[channel])
            assert len(g[f"{channel}_frame_time"]) == sum(1 for c, _, _ in PLAN if c == channel)
        ids = g["event_id"][...]
        # rows in the order events began (their first frame, DATA or EVENT)
        np.testing.assert_array_equal(ids, [3, 1, 2, 4])
        np.testing.assert_array_equal(g["event_time"][...], [event_time(e) for e in ids])
        np.testing.assert_array_equal(g["event_state"][...], [1, 1, 1, 2])
        for row, e in enumerate(ids):
            for channel in ("adc0", "adc1"):
                start = int(g[f"{channel}_event_start"][row])
                count = int(g[f"{channel}_event_count"][row])
                want = events[e].get(channel, np.zeros(0, g[channel].dtype))
                assert count == len(want), (e, channel)
                np.testing.assert_array_equal(g[channel][start:start + count], want)
        level, hits = g["trigger_level"][...], g["hits"][...]
        for row, e in enumerate(ids):
            if e in FIELDS:
                assert level[row] == np.float32(FIELDS[e][0]) and hits[row] == FIELDS[e][1]
        assert np.isnan(level[3]) and hits[3] == 0
        # the table has its own axis, every column on it
        assert h5py.h5ds.is_scale(g["event_time"].id)
        for name in ("event_id", "event_state", "adc0_event_start", "adc1_event_count",
                     "trigger_level", "hits"):
            assert g[name].dims[0].label == "event_time", name
            assert g[name].dims[0][0].name == "/b1/event_time", name
        assert g["trigger_level"].attrs["units"] == "V"
        assert np.isnan(g["trigger_level"].attrs["_FillValue"])
        assert list(g["event_state"].attrs["flag_values"]) == [0, 1, 2]
        assert g["event_time"].attrs["units"] == "nanoseconds since 1970-01-01T00:00:00Z"


def test_netcdf_and_xarray_read_the_event_table(recorder):
    path, sent, events = record_plan(recorder)
    # h5netcdf names the samples' dimensions (no scale: docs/engine.md) only
    # when asked to; the event table has its own
    for engine, kw in (("netcdf4", {}), ("h5netcdf", {"phony_dims": "sort"})):
        with xr.open_dataset(path, group="/b1", engine=engine, **kw) as ds:
            assert ds["event_id"].dims == ("event_time",), engine
            assert str(ds["event_time"].dtype) == "datetime64[ns]", engine
            np.testing.assert_array_equal(ds["event_id"].values, [3, 1, 2, 4])
            np.testing.assert_array_equal(
                ds["event_time"].values.astype(np.int64), [event_time(e) for e in (3, 1, 2, 4)])
            level = ds["trigger_level"].values
            np.testing.assert_array_equal(level[:3], np.float32([-1.5, 0.25, 0.5]))
            assert np.isnan(level[3]), engine   # masked by _FillValue
            assert ds["trigger_level"].attrs["units"] == "V", engine
            # an event's samples, from the table, with xarray alone
            row = 1   # event 1
            start = int(ds["adc0_event_start"].values[row])
            count = int(ds["adc0_event_count"].values[row])
            np.testing.assert_array_equal(ds["adc0"].values[start:start + count],
                                          events[1]["adc0"])
    with netCDF4.Dataset(path) as nc:
        g = nc["b1"]
        assert g.dimensions["event_time"].size == 4
        assert g["adc1_event_count"].dimensions == ("event_time",)
        np.testing.assert_array_equal(g["adc1_event_count"][:], [70, 50, 40, 0])
        assert g["trigger_level"][:].mask.tolist() == [False, False, False, True]
    dump = subprocess.run(["ncdump", "-v", "event_id,adc0_event_count", path],
                          capture_output=True, text=True, timeout=60, check=True).stdout
    assert "uint64 event_id(event_time)" in dump, dump
    assert "float trigger_level(event_time)" in dump, dump
    assert "event_id = 3, 1, 2, 4 ;" in dump, dump
    assert "adc0_event_count = 80, 300, 120, 60 ;" in dump, dump


def test_send_event_to_a_stream_group(recorder, tmp_path):
    rec = recorder(ADC, listen=FRAME_TCP)
    samples = np.arange(1000, dtype=np.int16)
    samples.tofile(tmp_path / "adc0.i16")
    res = run_client(["send", "-c", rec.schema_path, "--event", "b1", "--event-id", 9,
                      "--fields", "trigger_level=0.75,hits=4i", "--t0", T0, "--dt", "1e-6",
                      "-n", 400, "-d", "int16", "-k", "b1/adc0", tmp_path / "adc0.i16"])
    frames, _, acked, last = sent_summary(res.stdout)
    assert acked == last == frames == 5, res.stdout   # HELLO, EVENT and 3 DATA frames
    rec.stop()
    with rec.recording() as f:
        g = f["b1"]
        np.testing.assert_array_equal(g["event_id"][...], [9])
        np.testing.assert_array_equal(g["event_time"][...], [T0])
        np.testing.assert_array_equal(g["adc0_event_start"][...], [0])
        np.testing.assert_array_equal(g["adc0_event_count"][...], [1000])
        np.testing.assert_array_equal(g["adc1_event_count"][...], [0])
        np.testing.assert_array_equal(g["trigger_level"][...], np.float32([0.75]))
        np.testing.assert_array_equal(g["hits"][...], [4])
        np.testing.assert_array_equal(g["adc0"][...], samples)


def test_an_event_across_a_roll_and_open_group(recorder):
    """An event still open when its file rolls has a row in each file, each
    pointing at that file's samples; h5rec.reader.open_group joins the files
    and makes the table index the joined samples."""
    from h5rec.reader import open_group
    rec = recorder(ADC, listen=FRAME_TCP, output={"flush": "200ms"})
    parts = []
    with h5rec.Sender(rec.address(0), name="pytest") as s:
        for k in range(6):
            if k == 3:
                s.wait(timeout=60)
                rec.control("roll")
            data = frame("adc0", k, 100 + k)
            s.send("b1/adc0", data, t0=T0 + k * SEC // 10, event_id=[0, 5, 5, 5, 6, 0][k])
            parts.append(data)
        s.event("b1", {"trigger_level": 1.0, "hits": 1}, t0=T0 + SEC // 10, event_id=5)
        s.wait(timeout=60)
    rec.stop()
    files = rec.files()
    assert len(files) == 2, files
    with h5py.File(files[0], "r") as f:
        g = f["b1"]
        np.testing.assert_array_equal(g["event_id"][...], [5])
        np.testing.assert_array_equal(g["adc0_event_start"][...], [100])
        np.testing.assert_array_equal(g["adc0_event_count"][...], [101 + 102])
        assert g["event_state"][0] == 2 and np.isnan(g["trigger_level"][0])
    with h5py.File(files[1], "r") as f:
        g = f["b1"]
        np.testing.assert_array_equal(g["event_id"][...], [5, 6])
        np.testing.assert_array_equal(g["adc0_event_start"][...], [0, 103])
        np.testing.assert_array_equal(g["adc0_event_count"][...], [103, 104])
        np.testing.assert_array_equal(g["event_state"][...], [1, 2])
        assert g["trigger_level"][0] == 1.0
    ds = open_group(rec.out, "b1")
    assert ds["event_id"].dims == ("event_time",)
    np.testing.assert_array_equal(ds["adc0"].values, np.concatenate(parts))
    # rows by their first sample: event 5 in the first file, in the second, 6
    rows = sorted(zip(ds["adc0_event_start"].values, ds["adc0_event_count"].values,
                      ds["event_id"].values))
    want = [(5, np.concatenate(parts[1:3])), (5, parts[3]), (6, parts[4])]
    assert len(rows) == len(want)
    for (start, count, e), (want_id, want_samples) in zip(rows, want):
        assert e == want_id
        np.testing.assert_array_equal(ds["adc0"].values[start:start + count], want_samples)
