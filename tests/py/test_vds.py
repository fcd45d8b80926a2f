"""Provenance and `h5rec vds` (docs/scale-out.md, "One logical dataset"):
rows from a NATS source record the stream sequence of their message, and
`h5rec vds` joins the files of several recorders into one master of
virtual datasets in which every message appears exactly once.

The recorders and nats-server come from test_nats.py's fixtures
(loopback, JetStream store in the test's temporary directory). Every
message carries its own number and a SHA-512 of it, so each row of the
master is checked against the message it claims to be. Duplicates are made
two ways: by a recorder killed mid-stream (its stored, unacknowledged
messages go to the survivor), and deterministically by two recorders on two
consumers of one stream, which each store every message.
"""
import glob
import os
import re
import shutil
import socket
import struct
import subprocess
import sys

import h5py
import netCDF4
import numpy as np
import pytest
import xarray as xr

from recorder_fixture import (DATA, H5REC, SOURCE, T0, encode_frame,  # noqa: F401
                              preload_env, recorder)
from test_nats import (HANG_GUARD, NATS_SERVER, PUBLISH, SUBJECT, WAVE_STREAM,  # noqa: F401
                       all_acked, nats, publish, read_waves, records, sources_yaml,
                       start_recorder, wait_for, wave)

sys.path.insert(0, os.path.join(SOURCE, "python"))
import h5rec  # noqa: E402

pytestmark = pytest.mark.skipif(not os.path.exists(NATS_SERVER),
                                reason="nats-server is not installed (.ci/packages)")

STREAM_LAYOUT = """
- name: adc
  match: { key: "{board}/{channel}" }
  group: "/{board}"
  layout: stream
  defaults: { dtype: int64, dt: 1.0e-6, chunk: 64 }
  channels: { adc0: {} }
"""

TABLE_LAYOUT = """
- name: weather
  match: { measurement: weather }
  group: "/{station}"
  layout: table
  channels: { temperature: { dtype: float64, units: degC } }
"""


def source(url, consumer, protocol="frame", stream="S", subject=SUBJECT, ack_wait="30s",
           extra=""):
    return ("sources:\n"
            f"  - nats: {{ servers: [{url}], stream: {stream}, consumer: {consumer}, "
            f"protocol: {protocol}, subjects: [{subject}], ack_wait: {ack_wait}, "
            f"max_ack_pending: 64, fetch: {{ batch: 16, expires: 500ms }}{extra} }}")


def vds(output, *inputs, check=True):
    r = subprocess.run([H5REC, "vds", str(output), *map(str, inputs)], capture_output=True,
                       text=True, timeout=HANG_GUARD)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def files_of(*recs):
    return [p for r in recs for p in sorted(glob.glob(os.path.join(r.out, "*.h5")))]


def clear(rec):
    """A killed recorder's files are still marked open for writing."""
    for path in glob.glob(os.path.join(rec.out, "*.h5")):
        subprocess.run(["h5clear", "-s", path], check=True, capture_output=True)


def check_waves_once(master, total):
    """Every message 0..total-1 exactly once in the master's /w, each row
    its message's waveform, in every reader; time decoded by xarray."""
    with h5py.File(master, "r") as f:
        g = f["w"]
        rows = g["wave"][...]
        seq = g["source_seq"][...]
        time = g["time"][...]
        assert g["wave"].is_virtual and g["time"].is_virtual
        assert g["wave"].dims[0][0].name == "/w/time"
        assert g["source_seq"].dims[0][0].name == "/w/time"
        assert g["wave"].dims[1][0].name == "/w/sample_time"
        assert g["time"].attrs["units"] == "nanoseconds since 1970-01-01T00:00:00Z"
        ids = [v.decode() for v in g["source_msg_id"][...]]
        assert g["source_msg_id"].dims[0][0].name == "/w/time"
    numbers = [int(r[0]) for r in rows]
    for row in rows:
        assert np.array_equal(row, wave(int(row[0])))
    # the sender's id of the message that made each row, aligned with it
    assert ids == [f"s1:{n + 1}" for n in numbers]
    assert sorted(numbers) == list(range(total)), "not every message exactly once"
    assert len(set(seq.tolist())) == len(seq) and (seq > 0).all()
    assert np.array_equal(time, T0 + np.array(numbers) * 1000)
    with netCDF4.Dataset(master) as nc:
        w = nc["w"]
        assert sorted(int(v) for v in w["wave"][:, 0]) == list(range(total))
        assert w["wave"].dimensions == ("time", "sample_time")
        assert list(w["source_msg_id"][:]) == ids
    for engine, kw in (("netcdf4", {}), ("h5netcdf", {})):  # no phony dimension here
        with xr.open_dataset(master, group="/w", engine=engine, **kw) as ds:
            assert ds["time"].dtype == np.dtype("datetime64[ns]"), engine
            assert ds["wave"].dims == ("time", "sample_time")
            got = ds["wave"].values
            assert sorted(int(v) for v in got[:, 0]) == list(range(total)), engine
            expect = (T0 + got[:, 0].astype(np.int64) * 1000).astype("datetime64[ns]")
            assert np.array_equal(ds["time"].values, expect), engine
            assert ds["source_msg_id"].dims == ("time",), engine
            assert [str(v) for v in ds["source_msg_id"].values] == ids, engine


def test_rows_record_their_message(nats, recorder):
    """A source's rows carry source_seq, the message's stream sequence,
    as a column on the time axis that h5py, netCDF and xarray read; a
    schema without sources has no such column."""
    (server,) = nats(1)
    r = start_recorder(recorder, [server.url])
    publish(server.url, 0, 20)
    wait_for(lambda: all_acked(server, 20), "every message acknowledged")
    r.stop()
    (path,) = glob.glob(os.path.join(r.out, "*.h5"))
    with h5py.File(path, "r") as f:
        seq = f["w/source_seq"]
        assert seq.dtype == np.uint64 and "_FillValue" not in seq.attrs
        assert list(seq.attrs["source_streams"]) == ["S"]
        assert seq.dims[0][0].name == "/w/time"
        numbers = [int(row[0]) for row in f["w/wave"][...]]
        # message i was published i-th: stream sequence i + 1
        assert [int(s) - 1 for s in seq[...]] == numbers
    with xr.open_dataset(path, group="/w", engine="netcdf4") as ds:
        assert ds["source_seq"].dims == ("time",)
        assert ds["source_seq"].dtype == np.uint64
    plain = recorder(WAVE_STREAM, [{"protocol": "frame", "transport": "tcp"}])
    plain.stop()
    for path in glob.glob(os.path.join(plain.out, "*.h5")):
        with h5py.File(path, "r") as f:
            assert all("source_" not in name for g in f.values()
                       for name in getattr(g, "keys", lambda: [])())


def read_ids(path, group="/w", name="source_msg_id"):
    """A provenance id column through h5py, netCDF4 and both xarray
    engines, each decoding it as str; all four must agree."""
    with h5py.File(path, "r") as f:
        d = f[group.strip("/") + "/" + name]
        assert h5py.check_string_dtype(d.dtype).encoding == "utf-8"
        assert "_FillValue" not in d.attrs and "long_name" in d.attrs
        assert "Nats-Msg-Id" in d.attrs["long_name"]
        axis = d.dims[0][0].name
        got = d.asstr()[...].tolist()
    with netCDF4.Dataset(path) as nc:
        v = nc[group.strip("/")][name]
        assert v.dtype == str and list(v[:]) == got
    for engine, kw in (("netcdf4", {}), ("h5netcdf", {"phony_dims": "sort"})):
        with xr.open_dataset(path, group=group, engine=engine, **kw) as ds:
            assert "/" + group.strip("/") + "/" + ds[name].dims[0] == axis, engine
            assert [type(v) for v in ds[name].values[:1]] in ([], [str]), engine
            assert list(ds[name].values) == got, engine
    return got


def test_rows_record_their_sender(nats, recorder):
    """Every records row carries source_msg_id, the Nats-Msg-Id of the
    message that made it (SENDER:N as nats_publish and h5rec send --nats
    set it), read as str by h5py, netCDF4 and both xarray engines; an id
    longer than 128 bytes is cut there without splitting a character, one
    that is not UTF-8 is left out (empty)."""
    (server,) = nats(1)
    r = start_recorder(recorder, [server.url])
    publish(server.url, 0, 20, sender="tester")
    long_name = "é" * 70  # 140 bytes: nats_publish's ids end at 159
    publish(server.url, 20, 2, sender=long_name)
    bad = subprocess.run([PUBLISH, "publish", server.url, SUBJECT, b"\xff\xfe", b"1"],
                         input=records(22, 1), capture_output=True, timeout=HANG_GUARD)
    assert bad.returncode == 0, bad.stderr
    wait_for(lambda: all_acked(server, 23), "every message acknowledged")
    r.stop()
    (path,) = glob.glob(os.path.join(r.out, "*.h5"))
    with h5py.File(path, "r") as f:
        numbers = [int(row[0]) for row in f["w/wave"][...]]
        seq = f["w/source_seq"][...].tolist()
    ids = read_ids(path)
    assert sorted(numbers) == list(range(23))
    cut = ("é" * 64)  # 128 bytes: ':21' and the 65th character do not fit
    expect = {**{i: f"tester:{i + 1}" for i in range(20)}, 20: cut, 21: cut, 22: ""}
    assert ids == [expect[n] for n in numbers]
    assert seq == [n + 1 for n in numbers]


def test_h5rec_send_ids_in_rows(nats, recorder, tmp_path):
    """h5rec send --nats names its messages NAME-HOST-PID-MS:N: every row
    records its message's id, N counting the messages in order."""
    (server,) = nats(1)
    r = start_recorder(recorder, [server.url])
    samples = tmp_path / "w.bin"
    samples.write_bytes(b"".join(wave(i).tobytes() for i in range(30)))
    sent = subprocess.run([H5REC, "send", "--nats", server.url, "--subject", SUBJECT,
                           "--name", "station7", "-k", "w/wave", "-d", "int64", "-n", "16",
                           str(samples)], capture_output=True, text=True, timeout=HANG_GUARD)
    assert sent.returncode == 0, sent.stderr
    wait_for(lambda: all_acked(server, 30), "every message acknowledged")
    r.stop()
    (path,) = glob.glob(os.path.join(r.out, "*.h5"))
    with h5py.File(path, "r") as f:
        numbers = [int(row[0]) for row in f["w/wave"][...]]
    ids = read_ids(path)
    assert sorted(numbers) == list(range(30))
    run = ids[0].rsplit(":", 1)[0]
    assert re.fullmatch(r"station7-%s-\d+-\d+" % re.escape(socket.gethostname()[:63]), run), run
    assert ids == [f"{run}:{n + 1}" for n in numbers]


def test_vds_after_a_recorder_was_killed(nats, recorder, tmp_path):
    """Two recorders share the consumer; one is killed with SIGKILL
    mid-stream while its disk stalls in an fsync (the shim fsync_fault):
    what that flush wrote is in its file, never acknowledged, so the broker
    gives those messages to the survivor, which stores them again. The
    files hold duplicates; the master built over both recorders' files
    holds every published message exactly once."""
    (server,) = nats(1)
    first, second = 2000, 2000
    total = first + second
    streams = [{"protocol": "metrics", "transport": "tcp"}]
    top = sources_yaml([server.url], ack_wait="3s")
    a = recorder(WAVE_STREAM, streams, output={"flush": "100ms"}, top=top,
                 env=preload_env("fsync_fault", H5REC_FSYNC_AT=6, H5REC_FSYNC_SLEEP_MS=600000))
    b = recorder(WAVE_STREAM, streams, output={"flush": "100ms"}, top=top)
    publish(server.url, 0, first)
    a.wait_log(r"fsync_fault: fsync call 6 stalls", timeout=HANG_GUARD)
    a.proc.kill()
    a.proc.wait()
    publish(server.url, first, second)
    wait_for(lambda: all_acked(server, total), "every message acknowledged")
    b.stop()
    in_a, in_b = read_waves(a), read_waves(b)
    print(f"the killed recorder stored {len(in_a)}, the survivor {len(in_b)}, of {total}")
    assert set(in_a) | set(in_b) == set(range(total)), "messages lost"
    dups = len(in_a) + len(in_b) - total
    assert dups > 0, "no duplicates in the files"
    master = tmp_path / "all.h5"
    out = vds(master, *files_of(a, b))
    assert f"{dups} duplicate rows left out" in out.stdout, out.stdout
    with h5py.File(master, "r") as f:
        assert int(f.attrs["vds_duplicates_dropped"]) == dups
        assert int(f.attrs["vds_deduplicated"]) == 1
    check_waves_once(master, total)


def two_consumers(nats, recorder, streams, protocol="frame", **kw):
    """Two recorders on two consumers of one stream: each stores every
    message, so every message is in the files twice."""
    (server,) = nats(1)
    recs = [recorder(streams, [{"protocol": "metrics", "transport": "tcp"}],
                     output={"flush": "100ms"}, top=source(server.url, f"c{i}", protocol, **kw))
            for i in range(2)]
    return server, recs


def test_vds_records_every_message_twice(nats, recorder, tmp_path):
    """Every message stored by both recorders: the master leaves out one
    copy of each, reads the same in h5py, netCDF4 and both xarray engines
    (time decoded), and still works after its directory moved (sources
    named relative to the master)."""
    server, (a, b) = two_consumers(nats, recorder, WAVE_STREAM)
    total = 300
    publish(server.url, 0, total)
    wait_for(lambda: both_done(server, total), "both consumers done")
    a.stop()
    b.stop()
    assert sorted(read_waves(a)) == sorted(read_waves(b)) == list(range(total))
    data = tmp_path / "data"
    shutil.copytree(a.out, data / "a")
    shutil.copytree(b.out, data / "b")
    master = data / "all.h5"
    out = vds(master, *sorted(glob.glob(str(data / "*" / "*.h5"))))
    assert f"{total} duplicate rows left out" in out.stdout, out.stdout
    with h5py.File(master, "r") as f:
        assert f.attrs["schema_name"] == "e2e"
        assert sorted(f.attrs["vds_files"]) == ["a/e2e-0000.h5", "b/e2e-0000.h5"]
    check_waves_once(master, total)
    moved = tmp_path / "elsewhere"
    shutil.move(str(data), str(moved))
    check_waves_once(moved / "all.h5", total)
    # rebuilt over the directories, the master itself is not an input
    again = vds(moved / "all.h5", moved / "a", moved / "b")
    assert f"{total} duplicate rows left out" in again.stdout, again.stdout
    check_waves_once(moved / "all.h5", total)


def both_done(server, n, stream="S"):
    for name in ("c0", "c1"):
        c = server.consumer(stream, name)
        if c is None or c["ack_floor"]["stream_seq"] < n or c["num_ack_pending"]:
            return False
    return True


def adc_frames(first, n, per=40):
    """Frames for board b1, adc0: frame k holds samples k*per .. k*per+per-1
    of a ramp whose values are their own index."""
    out = bytearray()
    for k in range(first, first + n):
        values = np.arange(k * per, (k + 1) * per, dtype="<i8")
        frame = encode_frame(DATA, key="b1/adc0", payload=values.tobytes(), dtype=7, seq=k + 1,
                             t0=T0 + k * per * 1000, event_id=0)
        out += struct.pack("<I", len(frame)) + frame
    return bytes(out)


def test_vds_stream_layout(nats, recorder, tmp_path):
    """Stream layout: every frame stored twice; the master keeps each frame
    once, its samples with it, and <ch>_frame_start (a real dataset)
    points into the master's samples."""
    server, (a, b) = two_consumers(nats, recorder, STREAM_LAYOUT)
    n, per = 150, 40
    p = subprocess.run([PUBLISH, "publish", server.url, SUBJECT, "adc"], input=adc_frames(0, n),
                       capture_output=True, timeout=HANG_GUARD)
    assert p.returncode == 0, p.stderr
    wait_for(lambda: both_done(server, n), "both consumers done")
    a.stop()
    b.stop()
    for r in (a, b):
        with h5py.File(files_of(r)[0], "r") as f:
            assert list(f["b1/adc0_frame_source_seq"][...]) == list(range(1, n + 1))
            assert f["b1/adc0_frame_source_seq"].dims[0][0].name == "/b1/adc0_frame_time"
        # the sender's id of each frame's message (nats_publish: SENDER:N)
        assert read_ids(files_of(r)[0], "/b1", "adc0_frame_source_msg_id") == \
            [f"adc:{k}" for k in range(1, n + 1)]
    # the Python reader, which sorts frames itself, reads a broker's files
    ds = h5rec.open_group(a.out, "/b1")
    assert np.array_equal(ds["adc0"].values, np.arange(n * per))
    master = tmp_path / "all.h5"
    out = vds(master, *files_of(a, b))
    assert f"{n} duplicate rows left out" in out.stdout, out.stdout
    with h5py.File(master, "r") as f:
        g = f["b1"]
        samples = g["adc0"][...]
        starts = g["adc0_frame_start"][...]
        seqs = g["adc0_frame_seq"][...]
        assert g["adc0"].is_virtual and not g["adc0_frame_start"].is_virtual
        assert g["adc0_frame_start"].dims[0][0].name == "/b1/adc0_frame_time"
        # every frame kept from one file, in its order: read from the sources
        assert g.attrs["time_monotonic"] == 1 and g.attrs["board"] == "b1"
    assert np.array_equal(np.sort(samples), np.arange(n * per))
    assert sorted(seqs.tolist()) == list(range(1, n + 1))
    # each frame's id kept with it, once: frame k came in message adc:k
    assert read_ids(master, "/b1", "adc0_frame_source_msg_id") == [f"adc:{k}" for k in seqs]
    for k, s in zip(seqs, starts):  # each frame's samples where its index says
        k, s = int(k), int(s)
        assert np.array_equal(samples[s:s + per], np.arange((k - 1) * per, k * per))
    with xr.open_dataset(master, group="/b1", engine="h5netcdf", phony_dims="sort") as ds:
        assert ds["adc0_frame_time"].dtype == np.dtype("datetime64[ns]")
        assert ds["adc0"].size == n * per
    with xr.open_dataset(master, group="/b1", engine="netcdf4") as ds:
        assert ds["adc0_frame_time"].dtype == np.dtype("datetime64[ns]")
        assert ds["adc0_frame_start"].dims == ("adc0_frame_time",)


def test_vds_table_layout(nats, recorder, tmp_path):
    """Table layout from line batches: many rows per message, every message
    stored twice; the master keeps each row once, per station."""
    server, (a, b) = two_consumers(nats, recorder, TABLE_LAYOUT, protocol="line",
                                   subject="nl.data", stream="L", extra=", precision: ms")
    t0_ms = T0 // 1000000
    lines = [f"weather,station=s{i % 3} temperature={i}.5 {t0_ms + i}" for i in range(6000)]
    data = tmp_path / "lines.txt"
    data.write_text("\n".join(lines) + "\n")
    sent = subprocess.run([H5REC, "send", "--nats", server.url, "--subject", "nl.data", "--raw",
                           str(data)], capture_output=True, text=True, timeout=HANG_GUARD)
    assert sent.returncode == 0, sent.stderr

    def settled(c):
        s = server.consumer("L", c)
        return (s is not None and s["delivered"]["stream_seq"] > 0 and s["num_pending"] == 0
                and s["num_ack_pending"] == 0)

    wait_for(lambda: settled("c0") and settled("c1"), "both consumers done")
    a.stop()
    b.stop()
    master = tmp_path / "all.h5"
    out = vds(master, *files_of(a, b))
    assert "6000 duplicate rows left out" in out.stdout, out.stdout
    values = []
    with h5py.File(master, "r") as f:
        for st in ("s0", "s1", "s2"):
            g = f[st]
            assert g["temperature"].is_virtual
            assert g.attrs["station"] == st
            assert len(g["temperature"]) == len(g["time"]) == len(g["source_seq"])
            assert "source_msg_id" not in g  # many lines per message: not for tables
            values += g["temperature"][...].tolist()
    assert sorted(values) == [i + 0.5 for i in range(6000)]
    for engine in ("netcdf4", "h5netcdf"):
        with xr.open_dataset(master, group="/s1", engine=engine) as ds:
            assert ds["time"].dtype == np.dtype("datetime64[ns]")
            assert ds["temperature"].attrs["units"] == "degC"
            assert ds.sizes["time"] == 2000
            assert ds.attrs["time_monotonic"] == 1


def test_vds_without_provenance_and_refusals(recorder, tmp_path):
    """Files from listeners (no source_seq): concatenated whole, and said
    so. Files of another schema, or a killed recorder's file not yet
    cleared, are refused with the reason."""
    recs = []
    for i in range(2):
        r = recorder(TABLE_LAYOUT, [{"protocol": "line", "transport": "tcp"}])
        lines = "".join(f"weather,station=s1 temperature={i * 100 + k} {T0 + (i * 100 + k)}\n"
                        for k in range(100))
        host, port = r.address(0).split(":")[1:]
        with socket.create_connection((host, int(port))) as s:
            s.sendall(lines.encode())
        recs.append(r)
    for r in recs:
        r.stop()
    master = tmp_path / "plain.h5"
    out = vds(master, *files_of(*recs))
    assert "duplicates not looked for" in out.stdout, out.stdout
    with h5py.File(master, "r") as f:
        assert sorted(f["s1/temperature"][...].tolist()) == list(range(200))
        assert int(f.attrs["vds_deduplicated"]) == 0
        assert "source_seq" not in f["s1"]
    other = recorder(TABLE_LAYOUT, [{"protocol": "line", "transport": "tcp"}], name="other")
    host, port = other.address(0).split(":")[1:]
    with socket.create_connection((host, int(port))) as s:
        s.sendall(f"weather,station=s1 temperature=1 {T0}\n".encode())
    other.stop()
    refused = vds(tmp_path / "mixed.h5", *files_of(recs[0], other), check=False)
    assert refused.returncode == 1 and "of schema 'other'" in refused.stderr, refused.stderr
    assert not os.path.exists(tmp_path / "mixed.h5")
    live = recorder(TABLE_LAYOUT, [{"protocol": "line", "transport": "tcp"}])
    host, port = live.address(0).split(":")[1:]
    with socket.create_connection((host, int(port))) as s:
        s.sendall(f"weather,station=s1 temperature=1 {T0}\n".encode())
    wait_for(lambda: files_of(live), "the live file")
    live.control("flush")
    live.proc.kill()
    live.proc.wait()
    refused = vds(tmp_path / "live.h5", *files_of(live), check=False)
    assert refused.returncode == 1 and "h5clear -s" in refused.stderr, refused.stderr
    clear(live)
    vds(tmp_path / "live.h5", *files_of(live))
