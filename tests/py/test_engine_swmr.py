"""Storage engine durability (SPEC §6): live SWMR readers and SIGKILL.

The writer is tests/tools/h5w_gen in real time ("live"/"kill" modes): it
appends table rows as fast as it can in bursts, flushes every output.flush
(1 s) and prints "flushed <rows> <wall ns>" after each flush. Readers run in
a separate process and open the files afresh on every poll (a process that
keeps a file open would share HDF5's cached view). A group that appears
while a file is live goes into the next file, which the flush starts with
every group of the last one: the rows of /15 are spread over the files.
"""
import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np

from engine_util import GEN, files, write_schema

BODY = """\
streams:
  - name: weather
    match: { measurement: weather }
    group: "/{station}"
    layout: table
    defaults: { chunk: 1024 }
    channels:
      temperature: { dtype: float32 }
      wind: { dtype: float64, compression: lz4 }
"""

READER = r"""
import h5py, json, sys, time, glob
out, secs = sys.argv[1], float(sys.argv[2])
end = time.time() + secs
while time.time() < end:
    names = sorted(glob.glob(out + "/*.h5"))
    rec = {"t": time.time_ns(), "n15": -1, "n16": -1, "files": len(names), "err": None}
    try:
        for name in names:
            with h5py.File(name, "r", swmr=True) as f:
                for g in ("15", "16"):
                    if g in f:
                        rec["n" + g] = max(rec["n" + g], 0) + f[g + "/time"].shape[0]
    except Exception as e:
        rec["err"] = str(e)[:200]
    print(json.dumps(rec), flush=True)
    time.sleep(0.05)
"""

FLUSH_NS = 1_000_000_000
SLACK_NS = 500_000_000


def parse_writer(text):
    flushes, group16 = [], None
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] == "flushed":
            flushes.append((int(parts[1]), int(parts[2])))
        elif parts and parts[0] == "group16":
            group16 = int(parts[1])
    return flushes, group16


def test_live_reader_follows_within_flush_plus_half_second(tmp_path):
    schema, out = write_schema(tmp_path, BODY, output="flush: 1s\n", name="live")
    writer = subprocess.Popen([GEN, schema, "live", "10"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    reader = subprocess.Popen([sys.executable, "-c", READER, out, "11.5"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wout, werr = writer.communicate(timeout=60)
    rout, rerr = reader.communicate(timeout=60)
    assert writer.returncode == 0, werr
    assert reader.returncode == 0, rerr
    flushes, group16 = parse_writer(wout)
    polls = [json.loads(line) for line in rout.splitlines()]
    assert len(flushes) >= 8, wout
    assert group16 is not None
    # flushes come every output.flush (the median gap: a loaded machine
    # may delay one tick, which says nothing of the schedule)
    times = [w for _, w in flushes]
    gaps = sorted(b - a for a, b in zip(times, times[1:]))
    assert gaps[len(gaps) // 2] < FLUSH_NS + 300_000_000, gaps
    # whatever a flush made durable is visible 0.5 s later
    for rows, when in flushes[:-1]:
        later = [p for p in polls if p["t"] >= when + SLACK_NS and p["err"] is None]
        if not later:
            continue
        assert later[0]["n15"] >= rows, (rows, when, later[0])
    # the new group is visible within flush + 0.5 s of its creation
    seen16 = [p["t"] for p in polls if p["n16"] >= 0]
    assert seen16, "reader never saw group /16"
    assert seen16[0] - group16 <= FLUSH_NS + SLACK_NS
    # a file never leaves SWMR-write mode, and appears only complete: no
    # read ever fails
    errors = [p for p in polls if p["err"]]
    assert not errors, errors[:3]
    # /16 appearing started the second file, which /15 went on in
    assert len(files(out)) == 2
    # the finished files hold every row, exactly
    parts = {}
    for path in files(out):
        with h5py.File(path, "r") as f:
            parts[f["15/time"][0]] = {k: f["15/" + k][:] for k in ("time", "temperature", "wind")}
    joined = {k: np.concatenate([parts[t][k] for t in sorted(parts)]) for k in parts[min(parts)]}
    n = joined["time"].shape[0]
    assert n >= flushes[-1][0]
    check_rows(joined, n)


def check_rows(g, rows):
    i = np.arange(rows)
    temp = np.where(i % 5 == 4, np.nan, i * 0.5).astype(np.float32)
    wind = np.where((i + 1) % 5 == 4, np.nan, i * 0.5 + 1)
    np.testing.assert_array_equal(g["temperature"][:rows], temp)
    np.testing.assert_array_equal(g["wind"][:rows], wind)
    t = g["time"][:rows]
    assert (np.diff(t) >= 0).all()


def test_sigkill_leaves_readable_file_with_all_flushed_data(tmp_path):
    schema, out = write_schema(tmp_path, BODY, output="flush: 1s\n", name="kill")
    writer = subprocess.Popen([GEN, schema, "kill"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    flushed = []
    deadline = time.time() + 30
    while len(flushed) < 3 and time.time() < deadline:
        line = writer.stdout.readline()
        if line.startswith("flushed"):
            flushed.append(int(line.split()[1]))
    time.sleep(0.3)  # kill it mid-append, between flushes
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=10)
    assert len(flushed) == 3
    assert len(files(out)) == 1  # kill mode adds no group
    path = files(out)[0]
    try:
        f = h5py.File(path, "r", swmr=True)
    except OSError:
        subprocess.run(["h5clear", "-s", path], check=True, timeout=60)
        f = h5py.File(path, "r")
    with f:
        n = f["15/time"].shape[0]
        assert n >= flushed[-1]
        check_rows(f["15"], flushed[-1])
    # after h5clear -s it also opens normally
    subprocess.run(["h5clear", "-s", path], check=True, timeout=60)
    with h5py.File(path, "r") as f:
        assert f["15/time"].shape[0] >= flushed[-1]


XARRAY_READER = r"""
import glob, sys, time, h5netcdf, xarray as xr, numpy as np
out = sys.argv[1]
end = time.time() + 10
while time.time() < end and not glob.glob(out + "/*.h5"):
    time.sleep(0.05)
time.sleep(1.5)
nc = h5netcdf.File(glob.glob(out + "/*.h5")[0], "r", swmr=True)
ds = xr.open_dataset(xr.backends.H5NetCDFStore(nc, group="/15"))
assert ds["time"].dtype == np.dtype("datetime64[ns]"), ds["time"].dtype
assert ds.sizes["time"] > 0
print(ds.sizes["time"])
"""


def test_xarray_h5netcdf_reads_live_file(tmp_path):
    schema, out = write_schema(tmp_path, BODY, output="flush: 1s\n", name="xr")
    writer = subprocess.Popen([GEN, schema, "live", "4"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    reader = subprocess.run([sys.executable, "-c", XARRAY_READER, out], capture_output=True,
                            text=True, timeout=60)
    writer.communicate(timeout=60)
    assert reader.returncode == 0, reader.stderr
    assert int(reader.stdout) > 0
