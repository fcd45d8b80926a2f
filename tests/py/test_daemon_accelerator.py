"""Acceptance: the reference accelerator run, recorded by the real daemon.

100 dust-grain events, each an EVENT frame (mass, velocity) and three DATA
frames of 100,000 float32 samples, sent by `h5rec simulate accelerator` as
fast as it can to a token-protected listener into an LZ4 records layout. The
test decodes the client's own copy of the byte stream (--tee) with a frame
parser written from SPEC §3.1 and requires every waveform byte-identical,
every event's fields and time, rows in order of each event's first frame,
and the LZ4 datasets to read with Debian's filter plugin as well as ours.
"""
import hashlib
import json
import os
import socket
import subprocess
import textwrap
import time

import h5py
import numpy as np
import pytest
import xarray as xr

from recorder_fixture import (ACK, DATA, DEBIAN_PLUGIN_DIR, EVENT, FLAG_ACK, HELLO, PYTHON, SEC,
                              T0, attr_str, encode_frame, parse_field_set, parse_frames,
                              preload_env, run_client, sent_summary)
from recorder_fixture import recorder  # noqa: F401 (pytest fixture)
from reliability_helpers import parse_frames_prefix

EVENTS = 100
SAMPLES = 100000
CHANNELS = ("first_detector", "second_detector", "third_detector")
TOKEN = "change-me"

DUST = """
- name: dust
  match: { key: "dust/{channel}" }
  group: /dust
  layout: records
  samples: 100000
  dt: 2.0e-8
  record_timeout: 1s
  event_fields: { mass: float32, velocity: float32 }
  attrs: { detector: "dust accelerator" }
  defaults: { dtype: float32, units: V, compression: lz4 }
  channels:
    first_detector:  { long_name: "first detector signal" }
    second_detector: { long_name: "second detector signal" }
    third_detector:  { long_name: "third detector signal" }
"""

# Runs in a separate interpreter whose HDF5 finds only Debian's plugins.
DEBIAN_READER = textwrap.dedent("""
    import hashlib, json, sys
    import h5py
    out = {}
    with h5py.File(sys.argv[1], "r") as f:
        for name in sys.argv[2:]:
            ds = f["/dust/" + name]
            filters = ds.id.get_create_plist()
            ids = [filters.get_filter(i)[0] for i in range(filters.get_nfilters())]
            data = ds[...]
            out[name] = {"filters": ids, "shape": list(data.shape), "dtype": str(data.dtype),
                         "rows": [hashlib.sha256(row.tobytes()).hexdigest() for row in data]}
    json.dump(out, sys.stdout)
""")


def expected_events(frames):
    """Events in order of their first frame: [(event_id, t0, fields, {channel: samples})]."""
    events, by_id = [], {}
    for fr in frames:
        if fr.type == HELLO:
            continue
        assert fr.type in (DATA, EVENT) and fr.event_id != 0
        if fr.event_id not in by_id:
            by_id[fr.event_id] = {"id": fr.event_id, "t0": None, "fields": None, "waves": {}}
            events.append(by_id[fr.event_id])
        ev = by_id[fr.event_id]
        if fr.type == EVENT:
            assert fr.key == "dust"
            ev["t0"] = fr.t0
            ev["fields"] = parse_field_set(bytes(fr.payload).decode())
        else:
            channel = fr.key.split("/", 1)[1]
            assert fr.key == f"dust/{channel}" and fr.dtype == 9
            assert channel not in ev["waves"]
            ev["waves"][channel] = fr.samples()
    return events


def test_hundred_events_byte_identical(recorder, tmp_path):
    rec = recorder(DUST, listen=[{"protocol": "frame", "transport": "tcp",
                                  "token": f'"{TOKEN}"'}],
                   limits={"max_buffer": "256MiB", "max_frame": "64MiB"})
    tee = tmp_path / "frames.bin"
    res = run_client(["simulate", "accelerator", "-c", rec.schema_path, "--count", EVENTS,
                      "--rate", 0, "--t0", T0, "--tee", tee], timeout=180)
    frames_sent, _, acked, last = sent_summary(res.stdout)
    assert acked == last == frames_sent == 1 + 4 * EVENTS, res.stdout
    log = rec.stop()
    assert "warning" not in log and "error" not in log, log

    with open(tee, "rb") as f:
        stream = f.read()
    events = expected_events(parse_frames(stream))
    assert [e["id"] for e in events] == list(range(1, EVENTS + 1))
    assert all(e["fields"] and len(e["waves"]) == 3 for e in events)

    path = rec.the_file()
    with h5py.File(path, "r") as f:
        g = f["/dust"]
        assert attr_str(g.attrs["detector"]) == "dust accelerator"
        np.testing.assert_array_equal(g["event_id"][...], [e["id"] for e in events])
        np.testing.assert_array_equal(g["time"][...], [e["t0"] for e in events])
        for name in ("mass", "velocity"):
            assert g[name].dtype == np.float32
            np.testing.assert_array_equal(
                g[name][...], np.array([float(e["fields"][name]) for e in events],
                                       dtype=np.float64).astype(np.float32))
        np.testing.assert_allclose(g["sample_time"][...], np.arange(SAMPLES) * 2.0e-8,
                                   rtol=1e-12, atol=0)
        for name in CHANNELS:
            ds = g[name]
            assert ds.shape == (EVENTS, SAMPLES) and ds.dtype == np.float32
            dcpl = ds.id.get_create_plist()
            assert [dcpl.get_filter(i)[0] for i in range(dcpl.get_nfilters())] == [32004]
            data = ds[...]  # through our plugin (HDF5_PLUGIN_PATH)
            for row, e in enumerate(events):
                assert data[row].tobytes() == e["waves"][name].tobytes(), \
                    f"{name} row {row} (event {e['id']}) differs from what was sent"

    # netCDF readers see the record axis as decoded time, the sample axis as
    # sample_time, on every waveform (SPEC §4.2).
    for engine in ("netcdf4", "h5netcdf"):
        with xr.open_dataset(path, group="/dust", engine=engine) as ds:
            assert ds["time"].dtype == np.dtype("datetime64[ns]"), (engine, ds)
            np.testing.assert_array_equal(ds["time"].values.astype(np.int64),
                                          [e["t0"] for e in events])
            for name in CHANNELS:
                assert ds[name].dims == ("time", "sample_time"), (engine, name)
            assert ds["mass"].dims == ("time",)
            np.testing.assert_allclose(ds["sample_time"].values, np.arange(SAMPLES) * 2.0e-8,
                                       rtol=1e-12)

    # The same datasets through Debian's hdf5-filter-plugin only.
    env = dict(os.environ, HDF5_PLUGIN_PATH=DEBIAN_PLUGIN_DIR)
    res = subprocess.run([PYTHON, "-c", DEBIAN_READER, path, *CHANNELS], env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    debian = json.loads(res.stdout)
    for name in CHANNELS:
        assert debian[name]["filters"] == [32004], debian[name]["filters"]
        assert debian[name]["shape"] == [EVENTS, SAMPLES]
        assert debian[name]["dtype"] == "float32"
        assert debian[name]["rows"] == [
            hashlib.sha256(e["waves"][name].tobytes()).hexdigest() for e in events]


SMALL = """
- name: dust
  match: { key: "dust/{channel}" }
  group: /dust
  layout: records
  samples: 1000
  dt: 1.0e-6
  record_timeout: 5s
  event_fields: { mass: float32, velocity: float32 }
  defaults: { dtype: float32 }
  channels:
    a: { compression: lz4 }
    b: {}
    c: { compression: deflate }
"""


def test_rows_follow_each_events_first_frame(recorder):
    """Interleaved events, DATA before EVENT, an event-less DATA frame, a
    record still missing channels at the end, and a record left open across
    a flush and completed afterwards: rows in order of first frames, the
    EVENT's t0 as the row time, fill (NaN) only where nothing arrived."""
    rec = recorder(SMALL, listen=[{"protocol": "frame", "transport": "tcp"}],
                   output={"flush": "100ms"})
    rng = np.random.default_rng(3)
    wave = {(e, c): rng.standard_normal(1000).astype(np.float32)
            for e in (0, 3, 5, 7, 9) for c in "abc"}
    when = {e: T0 + e * SEC for e in (0, 3, 5, 7, 9)}
    seq = iter(range(1, 100))

    def data(e, c):
        return encode_frame(DATA, f"dust/{c}", wave[e, c].tobytes(), dtype=9, seq=next(seq),
                            t0=when[e] + 100, event_id=e)

    def event(e):
        return encode_frame(EVENT, "dust", f"mass={e}.5,velocity={e}0".encode(),
                            seq=next(seq), t0=when[e], event_id=e)

    with socket.create_connection(("127.0.0.1", rec.port()), timeout=5) as sock:
        sock.sendall(data(5, "a") + data(3, "b") + event(3) + event(5) + data(5, "b")
                     + data(3, "a") + data(3, "c") + data(5, "c")
                     + data(0, "a")                      # its own record
                     + event(7) + data(7, "a")           # b and c never come
                     + data(9, "a"))
        time.sleep(0.6)                                  # several flushes with 9 open
        sock.sendall(event(9) + data(9, "b") + data(9, "c"))
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(10)
        assert sock.recv(1) == b""
    log = rec.stop()
    assert "protocol_errors" not in log and "bad_data" not in log, log

    order = [5, 3, 0, 7, 9]
    with h5py.File(rec.the_file(), "r") as f:
        g = f["/dust"]
        np.testing.assert_array_equal(g["event_id"][...], order)
        np.testing.assert_array_equal(g["time"][...],
                                      [when[5], when[3], when[0] + 100, when[7], when[9]])
        mass = g["mass"][...]
        np.testing.assert_array_equal(mass[[0, 1, 3, 4]], np.float32([5.5, 3.5, 7.5, 9.5]))
        assert np.isnan(mass[2]), "an event-less record has no fields"
        np.testing.assert_array_equal(g["velocity"][[0, 1, 3, 4]], np.float32([50, 30, 70, 90]))
        for c in "abc":
            ds = g[c][...]
            assert ds.shape == (5, 1000), c
            for row, e in enumerate(order):
                missing = e in (0, 7) and c != "a"
                if missing:
                    assert np.isnan(ds[row]).all(), (c, e)
                else:
                    assert ds[row].tobytes() == wave[e, c].tobytes(), (c, e)


LATE = """
- name: dust
  match: { key: "dust/{channel}" }
  group: /dust
  layout: records
  samples: 10
  dt: 1.0e-6
  record_timeout: 200ms
  event_fields: { mass: float32 }
  channels: { a: { dtype: float32 }, b: { dtype: float32 } }
"""


@pytest.mark.parametrize("late", ["data", "event"])
def test_late_frame_does_not_duplicate_its_event(recorder, late):
    """SPEC §4.2: one row per event; a channel still missing when the record
    closes stays at the fill value. A frame of that event arriving later
    must not open another row for the same event_id."""
    rec = recorder(LATE, listen=[{"protocol": "frame", "transport": "tcp"}],
                   output={"flush": "100ms"})
    wave = np.arange(10, dtype=np.float32)

    def data(channel, seq, event_id):
        return encode_frame(DATA, f"dust/{channel}", wave.tobytes(), dtype=9, seq=seq,
                            t0=T0 + event_id * SEC, event_id=event_id)

    def event(seq, event_id):
        return encode_frame(EVENT, "dust", f"mass={event_id}".encode(), seq=seq,
                            t0=T0 + event_id * SEC, event_id=event_id)

    first, late_frame = ((event(1, 1) + data("a", 2, 1), data("b", 3, 1)) if late == "data"
                         else (data("a", 1, 1) + data("b", 2, 1), event(3, 1)))
    with socket.create_connection(("127.0.0.1", rec.port()), timeout=5) as sock:
        sock.sendall(first)
        time.sleep(1.0)  # five record timeouts: event 1 is closed, incomplete
        sock.sendall(late_frame)
        sock.sendall(event(4, 2) + data("a", 5, 2) + data("b", 6, 2))
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(5)
        assert sock.recv(1) == b""
    rec.stop()
    with h5py.File(rec.the_file(), "r") as f:
        g = f["/dust"]
        np.testing.assert_array_equal(g["event_id"][...], [1, 2])
        np.testing.assert_array_equal(g["time"][...], [T0 + SEC, T0 + 2 * SEC])
        np.testing.assert_array_equal(g["a"][0], wave)
        np.testing.assert_array_equal(g["a"][1], wave)
        np.testing.assert_array_equal(g["b"][1], wave)
    # Dropped, counted and said so: one late frame.
    assert rec.log().count("late_data: data from") == 1


# ---- record timeouts measure the sender, not the writer -----------------------------

SMALL_DUST = DUST.replace("samples: 100000", "samples: 1000")


def test_slow_writer_makes_no_event_late(recorder, tmp_path):
    """record_timeout (1 s) is the sender's lateness: it runs from when an
    event's first frame arrived, against the oldest frame still queued for
    the writer. A writer slowed to 150 ms per item falls 6 s behind 12
    events at 10 a second (49 items) and takes them in ever larger batches;
    it still closes no record whose frames arrived together: all complete,
    nothing late, every ACK sent. (Before, a record opened at the writer's
    clock and expired against it, so an event cut by a batch boundary was
    closed with the rest of its frames still queued, those were refused as
    late and the sender's connection closed.)"""
    events = 12
    rec = recorder(DUST, listen=[{"protocol": "frame", "transport": "tcp"}],
                   limits={"max_buffer": "64MiB", "max_frame": "64MiB"},
                   args=["--test-writer-delay-us", 150000])
    tee = tmp_path / "frames.bin"
    res = run_client(["simulate", "accelerator", "-c", rec.schema_path, "--count", events,
                      "--rate", 10, "--t0", T0, "--tee", tee], timeout=180)
    frames_sent, _, acked, last = sent_summary(res.stdout)
    assert acked == last == frames_sent == 1 + 4 * events, res.stdout
    log = rec.stop()
    assert "late_data" not in log and "record_timeout" not in log, log
    check_complete(rec, expected_events(parse_frames(tee.read_bytes())))


def check_complete(rec, events):
    with rec.recording() as f:
        assert list(f["dust/event_id"][...]) == [e["id"] for e in events]
        for name in CHANNELS:
            data = f["dust/" + name][...]
            assert not np.isnan(data).any(), f"{name}: a row was closed before its waveform"
        np.testing.assert_array_equal(f["dust/mass"][...],
                                      np.float32([e["fields"]["mass"] for e in events]))


def test_fsync_stalls_make_no_event_late(recorder):
    """Two fsyncs that take 2.5 s each (an LD_PRELOAD shim): the writer
    stops, frames queue up, and the batch taken after the stall ends in the
    middle of an event (frames come every 100 ms, an event is four). That
    event's other frames are still queued, so its record stays open: 30
    events, all complete, nothing late, every frame ACKed."""
    rec = recorder(SMALL_DUST, listen=[{"protocol": "frame", "transport": "tcp"}],
                   env=preload_env("fsync_fault", H5REC_FSYNC_AT="3,6",
                                   H5REC_FSYNC_SLEEP_MS=2500))
    rng = np.random.default_rng(5)
    frames, seq = [], 0
    for e in range(1, 31):
        seq += 1
        frames.append((encode_frame(EVENT, "dust", f"mass={e}.5,velocity={e}".encode(),
                                    seq=seq, t0=T0 + e * SEC, event_id=e, flags=FLAG_ACK),
                       None))
        for name in CHANNELS:
            seq += 1
            wave = rng.standard_normal(1000).astype(np.float32)
            frames.append((encode_frame(DATA, f"dust/{name}", wave.tobytes(), dtype=9, seq=seq,
                                        t0=T0 + e * SEC, event_id=e, flags=FLAG_ACK), wave))
    host, port = rec.bound[0][1]
    with socket.create_connection((host, port), timeout=30) as sock:
        for raw, _ in frames:
            sock.sendall(raw)
            time.sleep(0.1)
        acked = wait_acks(sock, seq, timeout=30)
    assert acked == seq
    log = rec.stop()
    assert log.count("fsync_fault: fsync call") == 2, log
    assert "late_data" not in log and "record_timeout" not in log, log
    with rec.recording() as f:
        assert list(f["dust/event_id"][...]) == list(range(1, 31))
        np.testing.assert_array_equal(f["dust/mass"][...], np.arange(1, 31) + np.float32(0.5))
        for k, name in enumerate(CHANNELS):
            waves = [w for raw, w in frames[1 + k::4]]
            np.testing.assert_array_equal(f["dust/" + name][...], np.stack(waves))


def wait_acks(sock, last, timeout):
    """Read ACK frames until seq `last` is acknowledged; the highest seq."""
    deadline, buf, acked = time.monotonic() + timeout, b"", 0
    while acked < last and time.monotonic() < deadline:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
        frames, whole = parse_frames_prefix(buf)
        buf = buf[whole:]
        for fr in frames:
            assert fr.type == ACK
            acked = max(acked, fr.seq)
    return acked


def test_live_reader_tells_an_event_still_filling(recorder):
    """A SWMR reader of the live file sees an event whose waveforms have not
    all arrived as record_state 0 (open) — its missing channel is fill that
    data may still replace — and the same row as 1 (complete) once the last
    waveform came (2, incomplete: closed with a channel missing, is checked
    in test_engine.py)."""
    small = DUST.replace("samples: 100000", "samples: 100").replace("record_timeout: 1s",
                                                                     "record_timeout: 60s")
    rec = recorder(small, listen=[{"protocol": "frame", "transport": "tcp"}],
                   output={"flush": "100ms"})
    wave = np.arange(100, dtype=np.float32)
    sock = socket.create_connection(rec.bound[0][1], timeout=10)
    seq = iter(range(1, 100))

    def send(ftype, key, payload, dtype=0):
        sock.sendall(encode_frame(ftype, key, payload, dtype=dtype, seq=next(seq), t0=T0,
                                  event_id=1, flags=FLAG_ACK))

    def state():
        rec.control("flush")
        with h5py.File(rec.the_file(), "r", swmr=True) as f:
            g = f["dust"]
            return g["record_state"][:].tolist(), g["third_detector"][:]

    send(EVENT, "dust", b"mass=1.5,velocity=2")
    send(DATA, "dust/first_detector", wave.tobytes(), dtype=9)
    send(DATA, "dust/second_detector", wave.tobytes(), dtype=9)
    rows, third = wait_for_state(state, lambda r: len(r[0]) == 1)
    assert rows == [0] and np.isnan(third[0]).all()
    send(DATA, "dust/third_detector", wave.tobytes(), dtype=9)
    rows, third = wait_for_state(state, lambda r: r[0] == [1])
    np.testing.assert_array_equal(third[0], wave)
    sock.close()
    rec.stop()


def wait_for_state(read, done, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)
