"""The Python package h5rec (python/h5rec, docs/client.md "Python package"),
against the real h5recd.

- it installs with `cmake --install --component python` where Debian's
  /usr/bin/python3 imports from, and imports from there;
- its frames are the ones docs/protocols.md describes (compared with the
  independent encoder and CRC of recorder_fixture.py);
- Sender sends numpy frames and events, survives a recorder restart
  mid-stream (SIGTERM, start again) and every frame is in the files exactly
  once;
- open_group reads three rolled weather files, one without the station,
  rows out of order and one repeated: sorted, complete, deduplicated, and
  .sel(time=slice(...)) works; it reads a live file while the daemon
  writes it; stream layout gets sample times from the frame index, records
  their sample_time axis.
"""
import os
import re
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from recorder_fixture import (ADC_STREAM, DATA, EVENT, HELLO, SEC, SOURCE, T0, BUILD,
                              crc32c as spec_crc32c, parse_frames)
from recorder_fixture import recorder  # noqa: F401 (pytest fixture)

# Tests import the package from the source tree; test_installs checks the
# installed copy.
sys.path.insert(0, os.path.join(SOURCE, "python"))
import h5rec  # noqa: E402

DUST = """
- name: dust
  match: { key: "dust/{channel}" }
  group: /dust
  layout: records
  samples: 100
  dt: 1.0e-6
  record_timeout: 5s
  event_fields: { mass: float32, velocity: float32 }
  defaults: { dtype: float32 }
  channels: { a: {}, b: {} }
"""
WEATHER = """
- name: weather
  match: { measurement: weather }
  group: "/{station}"
  layout: table
  channels: { temperature: { dtype: float32 }, wind: { dtype: float32 } }
"""
MS = 1000000


def cache_value(name):
    with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
        m = re.search(rf"^{name}:\w+=(.*)$", f.read(), re.M)
    assert m, f"{name} not in {BUILD}/CMakeCache.txt"
    return m.group(1)


def test_installs_where_debian_python_imports(tmp_path):
    subdir = cache_value("H5REC_PYTHON_DIR")
    # With the default prefix /usr/local (and /usr), Debian's python finds it.
    path = subprocess.run(["/usr/bin/python3", "-c", "import sys; print('\\n'.join(sys.path))"],
                          capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert os.path.join("/usr/local", subdir) in path.split("\n"), (subdir, path)
    prefix = tmp_path / "prefix"
    res = subprocess.run(["cmake", "--install", BUILD, "--prefix", str(prefix),
                          "--component", "python"], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    installed = prefix / subdir
    assert (installed / "h5rec" / "__init__.py").is_file()
    assert sorted(os.listdir(prefix)) == ["lib"], "the component installs the package only"
    # Imported by Debian's python, from the installed copy, with what it
    # needs from Debian alone; the reader too.
    code = ("import h5rec, h5rec.reader, numpy; print(h5rec.__file__); "
            "print(hex(h5rec.crc32c(b'123456789')))")
    res = subprocess.run(["/usr/bin/python3", "-I", "-c",
                          f"import sys; sys.path.insert(0, {str(installed)!r}); {code}"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    file, crc = res.stdout.split()
    assert file == str(installed / "h5rec" / "__init__.py") and crc == "0xe3069283"


def test_frames_match_the_spec():
    # docs/protocols.md §1.2, byte for byte
    frame = h5rec.encode_frame(DATA, "ch0", np.array([1.0, 2.0], np.float32).tobytes(),
                               dtype=9, seq=7, t0=1700000000000000000)
    assert frame.hex() == ("48355246010109010300000008000000"
                           "07000000000000000000 2a36fe9c9717".replace(" ", "")
                           + "0000000000000000" + "636830" + "0000803f" + "00000040"
                           + "66bb653d")
    rng = np.random.default_rng(1)
    for n in (0, 1, 100, 4095, 4096, 4097, 70001, 1 << 20):
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        if n <= 70001:
            assert h5rec.crc32c(data) == spec_crc32c(data), n
        half = n // 3
        assert h5rec.crc32c(data[half:], h5rec.crc32c(data[:half])) == h5rec.crc32c(data)
    big = rng.integers(-1000, 1000, 3000).astype(">i2")   # big-endian in, little on the wire
    ev = h5rec.field_set({"mass": 3.8e-17, "n": 3, "u": np.uint32(4), "ok": True,
                          "run": 'Run "3"', "a b": 1.5})
    assert ev == b'mass=3.8e-17,n=3i,u=4u,ok=true,run="Run \\"3\\"",a\\ b=1.5'
    wire = (h5rec.encode_frame(HELLO, "me", b'token="x"', seq=0)
            + h5rec.encode_frame(DATA, "b/adc0", big.astype("<i2").tobytes(), dtype=3, seq=1,
                                 t0=T0, ack=True)
            + h5rec.encode_frame(EVENT, "dust", ev, seq=2, t0=T0, event_id=9, crc=False))
    frames = parse_frames(wire, check_crc_below=1 << 30)
    assert [(f.type, f.seq, f.key) for f in frames] == [(HELLO, 0, "me"), (DATA, 1, "b/adc0"),
                                                        (EVENT, 2, "dust")]
    np.testing.assert_array_equal(frames[1].samples(), big)
    assert frames[1].flags == 3 and frames[2].flags == 0 and frames[2].event_id == 9
    assert h5rec.dtype_code(big.dtype) == 3
    with pytest.raises(TypeError):
        h5rec.dtype_code(np.complex64)
    assert h5rec.to_ns("2026-01-01T00:00:00Z") == T0
    assert h5rec.to_ns(np.datetime64("2026-01-01T00:00:01")) == T0 + SEC


def adc_samples(i):
    return (np.arange(500) + 1000 * i).astype(np.int16)


def make_durable(s, rec, timeout=60.0):
    """Flush the recorder until the sender has the ACK of its last frame
    (the schema's flush period is long: ACKs come when the test asks)."""
    deadline = time.monotonic() + timeout
    while True:
        rec.control("flush")
        try:
            return s.wait(timeout=1.0)
        except TimeoutError:
            assert time.monotonic() < deadline, "no ACK for the last frame"


def test_sender_survives_restarts_every_frame_once(recorder):
    """Frames and events from numpy, over a Unix socket. The recorder is
    stopped with SIGTERM while frames keep coming (it drains and ACKs them)
    and started again; later it is killed (SIGKILL) with frames sent but
    not yet flushed, and started again: the Sender reconnects and resends
    what was not acknowledged. Every frame ends up in the files exactly
    once."""
    rec = recorder(DUST + ADC_STREAM, listen=[{"protocol": "frame", "transport": "unix"}],
                   output={"flush": "200ms"})
    frames = 50
    sent_adc = {}          # seq -> samples
    sent_events = {}       # event_id -> (a, b)
    with h5rec.Sender(rec.address(0), name="pytest", reconnect_timeout=60) as s:
        for i in range(1, frames + 1):
            seq = s.send("b/adc0", adc_samples(i), t0=T0 + i * MS)
            sent_adc[seq] = adc_samples(i)
            a = np.full(100, i, np.float32)
            b = np.linspace(0, 1, 100, dtype=np.float32) * i
            s.send("dust/a", a, t0=T0 + i * MS, event_id=i)
            s.send("dust/b", b, t0=T0 + i * MS, event_id=i)
            s.event("dust", {"mass": float(i), "velocity": 2.0 * i}, t0=T0 + i * MS, event_id=i)
            sent_events[i] = (a, b)
            if i in (10, 30):
                make_durable(s, rec)
            if i == 20:
                # SIGTERM with frames not yet flushed: the recorder drains,
                # writes and ACKs them, and closes the connection.
                rec.stop()
                # From now on a flush period longer than the test: nothing is
                # flushed (so nothing ACKed) but when the test asks, so the
                # SIGKILL surely loses the frames sent after the last ACK,
                # and the sender must resend them.
                rec.output["flush"] = "60s"
                rec.start()
            if i == 40:
                # SIGKILL: frames 31..40 were sent but never flushed.
                assert s.pending == 40
                rec.proc.kill()
                rec.proc.wait()
                rec.output["flush"] = "200ms"
                rec.start()
        durable = make_durable(s, rec)
        assert durable == s.last_seq and s.pending == 0
        reconnects, replayed = s.reconnects, s.replayed
    assert reconnects == 2, reconnects
    assert replayed >= 40, replayed   # 31..40's frames, sent again
    rec.stop()
    files = rec.files()
    # one per recorder (or more: a group appearing while a file is live
    # goes into the next one, docs/engine.md)
    assert len(files) >= 3, files
    # with h5py: every ADC frame exactly once, with its samples
    seen = {}
    for path in files:
        with h5py.File(path, "r", swmr=True) as f:
            if "b" not in f:
                continue
            samples = f["b/adc0"][...]
            starts = f["b/adc0_frame_start"][...].astype(np.int64)
            ends = np.append(starts[1:], len(samples))
            for seq, a, e in zip(f["b/adc0_frame_seq"][...], starts, ends):
                assert int(seq) not in seen, f"frame {seq} twice"
                seen[int(seq)] = samples[a:e]
    assert sorted(seen) == sorted(sent_adc)
    for seq, samples in sent_adc.items():
        np.testing.assert_array_equal(seen[seq], samples)
    # every event exactly once, complete
    ids, rows = [], {}
    for path in files:
        with h5py.File(path, "r", swmr=True) as f:
            if "dust" not in f:
                continue
            g = f["dust"]
            for k, eid in enumerate(g["event_id"][...]):
                ids.append(int(eid))
                rows[int(eid)] = (g["a"][k], g["b"][k], g["mass"][k])
    assert sorted(ids) == list(range(1, frames + 1)), "an event missing or twice"
    for eid, (a, b) in sent_events.items():
        np.testing.assert_array_equal(rows[eid][0], a)
        np.testing.assert_array_equal(rows[eid][1], b)
        assert rows[eid][2] == eid

    # open_group: stream layout with sample times from the frame index
    ds = h5rec.open_group(rec.out, "/b")
    expect = np.concatenate([adc_samples(i) for i in range(1, frames + 1)])
    np.testing.assert_array_equal(ds["adc0"].values, expect)
    times = np.concatenate([T0 + i * MS + np.arange(500) * 1000 for i in range(1, frames + 1)])
    np.testing.assert_array_equal(ds["adc0_sample_time"].values.astype(np.int64), times)
    assert ds["adc0_sample_time"].dtype == np.dtype("datetime64[ns]")
    assert len(ds["adc0_frame_time"]) == frames
    np.testing.assert_array_equal(ds["adc0_frame_start"].values, np.arange(frames) * 500)
    part = ds.sel(adc0_sample_time=slice(np.datetime64(T0 + 2 * MS + 100_000, "ns"),
                                         np.datetime64(T0 + 3 * MS + 99_000, "ns")))
    np.testing.assert_array_equal(part["adc0"].values,
                                  np.concatenate([adc_samples(2)[100:], adc_samples(3)[:100]]))
    # start/end cut frames: the cut frame's time is its first kept sample's
    cut = h5rec.open_group(rec.out, "/b", start=T0 + 2 * MS + 100_000, end=T0 + 4 * MS)
    np.testing.assert_array_equal(cut["adc0"].values,
                                  np.concatenate([adc_samples(2)[100:], adc_samples(3)]))
    np.testing.assert_array_equal(cut["adc0_frame_start"].values, [0, 400])
    assert cut["adc0_frame_time"].values.astype(np.int64).tolist() == [T0 + 2 * MS + 100_000,
                                                                       T0 + 3 * MS]
    # records layout: rows by time, the sample_time axis
    dust = h5rec.open_group(rec.out, "dust")
    assert dust["a"].dims == ("time", "sample_time")
    np.testing.assert_allclose(dust["sample_time"].values, np.arange(100) * 1.0e-6)
    assert dust["event_id"].values.tolist() == list(range(1, frames + 1))
    assert dust["time"].values.astype(np.int64).tolist() == [T0 + i * MS
                                                             for i in range(1, frames + 1)]
    np.testing.assert_array_equal(dust["b"].sel(time=np.datetime64(T0 + 7 * MS, "ns")).values,
                                  sent_events[7][1])


def wait_rows(path, group, n, timeout=20.0):
    """Wait until a live file shows n rows in group (SWMR read)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with h5py.File(path, "r", swmr=True) as f:
                if group in f and f[group]["time"].shape[0] >= n:
                    return
        except (OSError, KeyError):
            pass
        assert time.monotonic() < deadline, f"{path}:{group} never reached {n} rows"
        time.sleep(0.05)


def live_rows(path, group):
    try:
        with h5py.File(path, "r", swmr=True) as f:
            return f[group]["time"].shape[0] if group in f else 0
    except OSError:
        return 0


def line(station, t, temperature, wind):
    return f"weather,station={station} temperature={temperature},wind={wind} {t}\n"


def test_open_group_three_rolled_weather_files(recorder):
    """Three files rolled by `h5rec roll`: the first has no station 15; rows
    come out of time order, the last file repeats a row of the second
    exactly (dropped) and has another row at the same time with other values
    (kept)."""
    import socket
    rec = recorder(WEATHER, listen=[{"protocol": "line", "transport": "tcp"}],
                   output={"flush": "200ms"})
    rng = np.random.default_rng(7)
    batches = [
        # file 1: only station 16
        [("16", T0 + k * SEC, 10 + k, 1) for k in rng.permutation(10)],
        # file 2: both, out of order, some earlier than file 1's
        [("15", T0 + k * SEC, 20 + k, 2) for k in rng.permutation(np.arange(5, 15))]
        + [("16", T0 - k * SEC, 30 + k, 2) for k in range(1, 6)],
        # file 3: both, before file 2's rows in time, plus a repeat
        [("15", T0 + k * SEC, 40 + k, 3) for k in rng.permutation(5)]
        + [("15", T0 + 7 * SEC, 27, 2),       # exact repeat of a file-2 row
           ("15", T0 + 8 * SEC, 99, 9)]       # same time as a file-2 row, other values
        + [("16", T0 + 100 * SEC, 1, 3)],
    ]
    with socket.create_connection(("127.0.0.1", rec.port(0)), timeout=10) as sock:
        for n, batch in enumerate(batches, 1):
            sock.sendall("".join(line(*row) for row in batch).encode())
            # every row so far visible (flushed) before the roll
            want = sum(len(b) for b in batches[:n])
            deadline = time.monotonic() + 20
            while sum(live_rows(p, st) for p in rec.files() for st in ("15", "16")) < want:
                assert time.monotonic() < deadline, f"rows of batch {n} never flushed"
                time.sleep(0.05)
            if n < len(batches):
                rec.control("roll")
    rec.stop()
    files = rec.files()
    # One file per batch (a group appearing while a file is live could add
    # one more, docs/engine.md); the first lacks station 15.
    assert len(files) >= 3, files
    with h5py.File(files[0], "r") as f:
        assert "15" not in f and "16" in f
    holding = []
    for p in files:
        with h5py.File(p, "r") as f:
            if "15" in f:
                holding.append(os.path.abspath(p))

    ds = h5rec.open_group(rec.out, "/15")
    assert ds.attrs["h5rec_files"] == holding
    rows = [r for b in batches for r in b if r[0] == "15"]
    expect = sorted(set((t, float(temp), float(w)) for _, t, temp, w in rows))
    got = list(zip(ds["time"].values.astype(np.int64).tolist(),
                   ds["temperature"].values.tolist(), ds["wind"].values.tolist()))
    assert got == expect        # sorted, complete, the exact repeat once
    assert ds["time"].dtype == np.dtype("datetime64[ns]")
    assert ds.indexes["time"].is_monotonic_increasing
    assert len(ds["time"]) == 5 + 10 + 1
    window = ds.sel(time=slice(np.datetime64(T0 + 3 * SEC, "ns"),
                               np.datetime64(T0 + 6 * SEC, "ns")))
    assert window["temperature"].values.tolist() == [43, 44, 25, 26]
    assert (ds.sel(time=slice("2026-01-01T00:00:08", "2026-01-01T00:00:08"))["temperature"]
            .values.tolist() == [28, 99])
    # start/end: [start, end)
    part = h5rec.open_group(files, "15", start=T0 + 3 * SEC, end="2026-01-01T00:00:06")
    assert part["temperature"].values.tolist() == [43, 44, 25]
    # station 16 over all three files
    ds16 = h5rec.open_group(rec.out, "16")
    assert len(ds16["time"]) == 16 and ds16.indexes["time"].is_monotonic_increasing
    assert ds16["time"].values[-1] == np.datetime64(T0 + 100 * SEC, "ns")
    with pytest.raises(FileNotFoundError):
        h5rec.open_group(rec.out, "/17")


def test_open_group_on_a_live_file(recorder):
    """While the daemon writes the file (SWMR), open_group reads it."""
    import socket
    rec = recorder(WEATHER, listen=[{"protocol": "line", "transport": "tcp"}],
                   output={"flush": "200ms"})
    with socket.create_connection(("127.0.0.1", rec.port(0)), timeout=10) as sock:
        sock.sendall("".join(line("15", T0 + k * SEC, k, 0) for k in range(50)).encode())
        deadline = time.monotonic() + 20
        while not rec.files():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        wait_rows(rec.the_file(), "15", 50)
        ds = h5rec.open_group(rec.out, "15")
        assert ds["temperature"].values.tolist() == list(range(50))
        sock.sendall("".join(line("15", T0 + k * SEC, k, 0) for k in range(50, 80)).encode())
        wait_rows(rec.the_file(), "15", 80)
        assert rec.running()
        ds = h5rec.open_group(rec.the_file(), "15", start=T0 + 70 * SEC)
        assert ds["temperature"].values.tolist() == list(range(70, 80))
    rec.stop()


def test_open_group_drops_a_repeated_stream_frame(recorder):
    """A frame received twice (same time, seq and samples: a resend of data
    the recorder had stored) is in the file twice and in the Dataset once;
    a frame of the same time with other samples stays."""
    import socket
    from recorder_fixture import FLAG_CRC, encode_frame
    rec = recorder(ADC_STREAM, listen=[{"protocol": "frame", "transport": "tcp"}],
                   output={"flush": "200ms"})
    frame = {seq: encode_frame(DATA, "b/adc0", adc_samples(seq).tobytes(), dtype=3, seq=seq,
                               t0=T0 + t * MS, flags=FLAG_CRC)
             for seq, t in ((1, 0), (2, 1), (3, 2))}
    other = encode_frame(DATA, "b/adc0", adc_samples(9).tobytes(), dtype=3, seq=4,
                         t0=T0 + 1 * MS, flags=FLAG_CRC)
    with socket.create_connection(("127.0.0.1", rec.port(0)), timeout=10) as sock:
        sock.sendall(frame[1] + frame[2] + frame[3] + frame[2] + other)
    rec.stop()
    with h5py.File(rec.the_file(), "r") as f:
        assert f["b/adc0_frame_seq"][...].tolist() == [1, 2, 3, 2, 4]
    ds = h5rec.open_group(rec.the_file(), "b")
    assert ds["adc0_frame_seq"].values.tolist() == [1, 2, 4, 3]
    np.testing.assert_array_equal(ds["adc0"].values, np.concatenate(
        [adc_samples(1), adc_samples(2), adc_samples(9), adc_samples(3)]))
    np.testing.assert_array_equal(ds["adc0_frame_start"].values, [0, 500, 1000, 1500])


def test_sender_token(recorder):
    """The HELLO carries the token; with a wrong one the recorder closes
    every connection, and the sender gives up after max_replays instead of
    resending forever."""
    rec = recorder(ADC_STREAM, listen=[{"protocol": "frame", "transport": "tcp",
                                        "token": '"s3cret"'}], output={"flush": "200ms"})
    with h5rec.Sender(rec.address(0), token="s3cret") as s:
        s.send("b/adc0", adc_samples(1), t0=T0)
        assert s.wait(timeout=30) == 1
    s = h5rec.Sender(rec.address(0), token="wrong", max_replays=2, reconnect_timeout=10)
    s.send("b/adc0", adc_samples(2), t0=T0 + MS)
    with pytest.raises(ConnectionError, match="without acknowledging"):
        s.wait(timeout=30)
    assert s.durable_seq == 0 and s.pending == 1
    rec.stop()
    with h5py.File(rec.the_file(), "r") as f:
        np.testing.assert_array_equal(f["b/adc0"][...], adc_samples(1))


def test_open_group_across_a_schema_change(recorder):
    """A channel added to the schema between two runs: the older file's rows
    get the fill value (NaN) for it."""
    import socket
    old = WEATHER.replace(", wind: { dtype: float32 }", "")
    files = []
    for streams, rows in ((old, range(0, 5)), (WEATHER, range(5, 10))):
        rec = recorder(streams, listen=[{"protocol": "line", "transport": "tcp"}],
                       output={"flush": "200ms"})
        with socket.create_connection(("127.0.0.1", rec.port(0)), timeout=10) as sock:
            fields = "temperature={t}" if streams is old else "temperature={t},wind=1"
            sock.sendall("".join(f"weather,station=15 {fields.format(t=k)} {T0 + k * SEC}\n"
                                 for k in rows).encode())
        rec.stop()
        files += rec.files()
    ds = h5rec.open_group(files[::-1], "15")
    assert ds["temperature"].values.tolist() == list(range(10))
    np.testing.assert_array_equal(ds["wind"].values, [np.nan] * 5 + [1.0] * 5)
