"""Slow stations and small stations: bytes on disk per byte stored.

A weather station reports every 10 s and the recorder flushes every
second, so a 4096-row chunk is written partially thousands of times before
it is whole. HDF5 moves a chunk whose stored size changes, and in
SWMR-write mode never reuses the space it leaves; the engine therefore
pads a partial chunk to the size of its last write, so it is rewritten in
place (docs/engine.md, "Partial chunks"). The file must stay within twice
its h5repack copy over a whole chunk of rows flushed one at a time, with
deflate and with LZ4, SWMR on; the padded chunks must read back exactly
with both LZ4 decoders (ours, and Debian's hdf5-filter-plugin, which
hdf5plugin uses on Debian).
"""
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from engine_util import DEBIAN_PLUGIN_DIR, PLUGIN_DIR, files, run_gen, write_schema

ROWS = 4096
TABLE = """\
streams:
  - name: weather
    match: {{ measurement: weather }}
    group: "/{{station}}"
    layout: table
    defaults: {{ dtype: float32, chunk: 4096, {compression} }}
    channels: {{ temperature: {{}}, wind: {{}}, pressure: {{}}, humidity: {{}} }}
"""
PIPELINES = {
    "deflate+shuffle": "compression: deflate, level: 4, shuffle: true",
    "lz4": "compression: lz4",
    "shuffle+lz4+fletcher32": "compression: lz4, shuffle: true, fletcher32: true",
}


def weather_values(rows):
    """What h5w_gen's slow mode sends (weather_value in tests/tools/h5w_gen.c)."""
    i = np.arange(rows, dtype=np.float64)
    temp = np.round((15.0 + 8.0 * np.sin(i / 8640.0 * 6.283185307179586)
                     + 0.3 * np.sin(i * 0.7)) * 10.0) / 10.0
    wind = (np.arange(rows) * 7919 % 97) / 10.0
    pressure = 1013.0 + np.round(np.sin(i / 3000.0) * 100.0) / 10.0
    humidity = 40 + (np.arange(rows) // 30) % 50
    return {"temperature": temp, "wind": wind, "pressure": pressure, "humidity": humidity}


READ_WITH = r"""
import sys, json, hashlib
import h5py
with h5py.File(sys.argv[1], "r") as f:
    print(json.dumps({k: hashlib.sha256(f["15/" + k][...].tobytes()).hexdigest()
                      for k in ("time", "temperature", "wind", "pressure", "humidity")}))
"""


@pytest.mark.parametrize("pipeline", sorted(PIPELINES))
def test_slow_station_file_within_twice_its_repack(tmp_path, pipeline):
    schema, out = write_schema(tmp_path, TABLE.format(compression=PIPELINES[pipeline]),
                               output="flush: 1s\n", name="slow")
    run_gen(schema, "slow", ROWS)
    (path,) = files(out)
    repacked = str(tmp_path / "repacked.h5")
    subprocess.run(["h5repack", path, repacked], check=True, timeout=120,
                   env=dict(os.environ, HDF5_PLUGIN_PATH=PLUGIN_DIR))
    size, packed = os.path.getsize(path), os.path.getsize(repacked)
    data_bytes = ROWS * (8 + 4 * 4)
    print(f"\n{pipeline}: {ROWS} rows flushed one at a time: {size} bytes, h5repack "
          f"{packed} ({size / packed:.2f}x), {data_bytes} bytes of data")
    assert size <= 2 * packed, (size, packed)
    with h5py.File(path, "r") as f:
        g = f["15"]
        np.testing.assert_array_equal(g["time"][...],
                                      1767323045000000000 + np.arange(ROWS) * 10**10)
        for name, want in weather_values(ROWS).items():
            np.testing.assert_array_equal(g[name][...], want.astype(np.float32), err_msg=name)
        expected = subprocess.run([sys.executable, "-c", READ_WITH, path, "ours"],
                                  capture_output=True, text=True, timeout=60,
                                  env=dict(os.environ, HDF5_PLUGIN_PATH=PLUGIN_DIR))
    assert expected.returncode == 0, expected.stderr
    if "lz4" in pipeline:
        got = subprocess.run([sys.executable, "-c", READ_WITH, path, "debian"],
                             capture_output=True, text=True, timeout=60,
                             env=dict(os.environ, HDF5_PLUGIN_PATH=DEBIAN_PLUGIN_DIR))
        assert got.returncode == 0, got.stderr
        assert got.stdout == expected.stdout


def test_a_station_with_one_row_costs_a_few_kb(tmp_path):
    """1,000 stations with one reading each, against one: what a station
    costs in a file, its datasets, attributes, scales and first chunks."""
    sizes = {}
    for n in (1, 1000):
        (tmp_path / str(n)).mkdir()
        schema, out = write_schema(tmp_path / str(n),
                                   TABLE.format(compression=PIPELINES["deflate+shuffle"]),
                                   name="many")
        run_gen(schema, "many", n)
        (path,) = files(out)
        sizes[n] = os.path.getsize(path)
        with h5py.File(path, "r") as f:
            assert len(f) == n
    per_station = (sizes[1000] - sizes[1]) / 999
    print(f"\none-row station: {per_station / 1024:.1f} KiB")
    assert per_station <= 8 * 1024, per_station


def test_a_steady_flush_walks_the_metadata_cache_once(tmp_path):
    """The weather steady state (h5w_gen steady: 500 stations every 10 s, a
    flush a second, SWMR): a flush writes 300 partial chunks (time and five
    channels of 50 stations) and makes one H5Fflush, at its end. Each
    H5Fflush walks HDF5's whole metadata cache (16,000 entries here); the
    extra one that every H5W_FLUSH_EVERY (256) writes used to add cost a
    fifth of the recorder's steady CPU. Bursts still get them (test_scale)."""
    body = TABLE.format(compression=PIPELINES["deflate+shuffle"]).replace(
        "humidity: {} }", "humidity: {}, rain: { dtype: int32, fill: -1 } }")
    schema, _ = write_schema(tmp_path, body, output="swmr: true\n")
    stats = run_gen(schema, "steady", 40)
    flushes = int(stats["flushes"])
    assert int(stats["chunks_written"]) >= 300 * 30, stats
    assert flushes >= 40, stats
    assert int(stats["metadata_flushes"]) == flushes, stats
