"""Storage engine: the file layouts of SPEC §4.1-4.3, read back with h5py,
xarray (netcdf4 and h5netcdf engines), ncdump and h5dump.

Each test writes a file through tests/tools/h5w_gen (the engine API, no
daemon) and compares every value with what the generator sent.
"""
import os
import subprocess

import h5py
import numpy as np
import pytest
import xarray as xr

from engine_util import (DEBIAN_PLUGIN_DIR, INT_RANGES, SEC, T0, assert_same, files, run_gen,
                         table_expected, waveform, write_schema)

TABLE_CHANNELS = [
    # name, dtype, own_time, fill as read back
    ("temperature", "float32", False, np.nan),
    ("wind", "float64", False, np.nan),
    ("count", "int16", False, 0),
    ("u8", "uint8", False, 0),
    ("big", "uint64", False, 0),
    ("i64", "int64", False, -1),
    ("u16", "uint16", False, 0),
    ("i32", "int32", False, 0),
    ("u32", "uint32", False, 0),
    ("i8", "int8", False, 0),
    ("status", "string", False, ""),
    ("gust", "float32", True, None),
    ("dfl", "float64", False, np.nan),
]

TABLE_BODY = """\
streams:
  - name: weather
    match: { measurement: weather }
    group: "/{station}"
    layout: table
    attrs: { institution: "Example Lab", number: 3, ratio: 0.5 }
    defaults: { chunk: 16 }
    channels:
      temperature: { dtype: float32, units: degC, dt: 10, long_name: "air temperature" }
      wind:        { dtype: float64, units: "m/s", compression: deflate, level: 4, shuffle: true, fletcher32: true }
      count:       { dtype: int16, compression: lz4 }
      u8:          { dtype: uint8, compression: lz4 }
      big:         { dtype: uint64 }
      i64:         { dtype: int64, fill: -1 }
      u16:         { dtype: uint16, chunk: 7 }
      i32:         { dtype: int32, scale_factor: 0.5, add_offset: 10 }
      u32:         { dtype: uint32, compression: deflate }
      i8:          { dtype: int8 }
      status:      { dtype: string }
      gust:        { dtype: float32, own_time: true, compression: lz4 }
      dfl:         { dtype: float64, compression: deflate, level: 6, shuffle: false }
"""

ROWS = 101  # not a multiple of any chunk: the last chunk is partial


@pytest.fixture(scope="module")
def table_file(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("table")
    schema, out = write_schema(tmp, TABLE_BODY, output="flush: 1s\n", name="wx")
    stats = run_gen(schema, "table", ROWS, 2)
    [path] = files(out)
    return path, stats


def test_table_values_exact(table_file):
    path, stats = table_file
    expected = table_expected(TABLE_CHANNELS, ROWS)
    with h5py.File(path, "r") as f:
        for station in ("15", "16"):
            g = f[station]
            assert g.attrs["station"] == station
            np.testing.assert_array_equal(g["time"][:], T0 + np.arange(ROWS) * SEC)
            for name, dtype, own_time, fill in TABLE_CHANNELS:
                ds = g[name]
                if dtype == "string":
                    assert [s.decode() for s in ds[:]] == expected[name]
                    continue
                assert ds.dtype == np.dtype(dtype), name
                assert_same(ds[:], expected[name])
            own = [i for i in range(ROWS) if i % 3 == 0 and (i + 11) % 5 != 4]
            # deflate chunks made by the engine's workers read back through HDF5
            assert g["dfl"].compression == "gzip" and g["dfl"].compression_opts == 6
            np.testing.assert_array_equal(g["gust_time"][:], T0 + np.array(own) * SEC)
    assert int(stats["samples_clipped"]) == 0


def test_table_scales_and_attributes(table_file):
    path, _ = table_file
    with h5py.File(path, "r") as f:
        g = f["15"]
        assert g.attrs["institution"] == "Example Lab"
        assert g.attrs["number"] == 3 and g.attrs["ratio"] == 0.5
        t = g["time"]
        assert t.attrs["units"] == "nanoseconds since 1970-01-01T00:00:00Z"
        assert t.attrs["calendar"] == "standard"
        assert t.attrs["standard_name"] == "time"
        for name, _, own_time, _ in TABLE_CHANNELS:
            ds = g[name]
            assert list(ds.dims[0].keys()) == ["gust_time" if own_time else "time"], name
            assert ds.maxshape == (None,)
        temp = g["temperature"]
        assert temp.attrs["units"] == "degC" and temp.attrs["dt"] == 10.0
        assert temp.attrs["long_name"] == "air temperature"
        assert temp.attrs["start_time"] == T0
        assert temp.attrs["end_time"] == T0 + (ROWS - 1) * SEC
        assert g["i32"].attrs["scale_factor"] == 0.5 and g["i32"].attrs["add_offset"] == 10
        assert np.isnan(temp.fillvalue) and g["i64"].fillvalue == -1
        assert g["temperature"].chunks == (16,) and g["u16"].chunks == (7,)


def test_root_attributes(table_file):
    path, _ = table_file
    with h5py.File(path, "r") as f:
        a = f.attrs
        assert a["schema_name"] == "wx"
        assert "layout: table" in a["schema"] and a["schema"].startswith("name: wx")
        assert a["file_created"] == "2026-01-02T03:04:05Z"
        assert a["host"] == "testhost" and a["run"] == "run7"
        assert a["file_sequence"] == 0
        assert a["h5rec_version"]


@pytest.mark.parametrize("engine", ["netcdf4", "h5netcdf"])
def test_table_xarray(table_file, engine):
    path, _ = table_file
    expected = table_expected(TABLE_CHANNELS, ROWS)
    with xr.open_dataset(path, group="/15", engine=engine) as ds:
        assert ds["time"].dtype == np.dtype("datetime64[ns]")
        assert ds["time"].values[0] == np.datetime64("2026-01-02T03:04:05", "ns")
        assert ds["temperature"].dims == ("time",)
        assert ds["gust"].dims == ("gust_time",)
        assert ds["gust_time"].dtype == np.dtype("datetime64[ns]")
        assert_same(ds["temperature"].values, expected["temperature"])
        # CF packing is decoded by xarray
        raw = np.array(expected["i32"], dtype=float)
        np.testing.assert_allclose(ds["i32"].values, raw * 0.5 + 10)
        assert ds.attrs["station"] == "15"


def test_ncdump_header(table_file):
    path, _ = table_file
    res = subprocess.run(["ncdump", "-h", path], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "time = UNLIMITED ; // (101 currently)" in res.stdout
    assert "float temperature(time)" in res.stdout
    assert ':schema_name = "wx"' in res.stdout


def test_h5dump_shows_filters(table_file):
    path, _ = table_file
    res = subprocess.run(["h5dump", "-pH", "-g", "/15", path], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    blocks = {b.split('"', 1)[0]: b for b in res.stdout.split('DATASET "')[1:]}
    wind = blocks["wind"]
    assert "SHUFFLE" in wind and "COMPRESSION DEFLATE { LEVEL 4 }" in wind
    assert "CHECKSUM FLETCHER32" in wind
    dfl = blocks["dfl"]
    assert "COMPRESSION DEFLATE { LEVEL 6 }" in dfl and "SHUFFLE" not in dfl
    for name in ("count", "u8", "gust"):
        assert "USER_DEFINED_FILTER" in blocks[name] and "FILTER_ID 32004" in blocks[name]
    assert "NONE" in blocks["big"].split("FILTERS")[1][:40]


def test_lz4_filter_is_mandatory(table_file):
    """An LZ4 dataset never holds a chunk that HDF5 stored unfiltered."""
    path, _ = table_file
    with h5py.File(path, "r") as f:
        for name in ("count", "u8", "gust"):
            plist = f["/15/" + name].id.get_create_plist()
            filters = [plist.get_filter(i) for i in range(plist.get_nfilters())]
            [lz4] = [flt for flt in filters if flt[0] == 32004]
            assert lz4[1] & h5py.h5z.FLAG_OPTIONAL == 0, (name, lz4)


def read_lz4_with(plugin_dir, path, names):
    """Read datasets in a fresh process that only knows PLUGIN_DIR."""
    code = ("import h5py,sys,json\n"
            "f=h5py.File(sys.argv[1],'r')\n"
            "print(json.dumps({n: f[n][:].tolist() for n in sys.argv[2:]}))\n")
    env = dict(os.environ, HDF5_PLUGIN_PATH=plugin_dir)
    res = subprocess.run(["/usr/bin/python3", "-c", code, path] + names, capture_output=True,
                         text=True, env=env, timeout=60)
    assert res.returncode == 0, res.stderr
    import json
    return json.loads(res.stdout)


def test_lz4_reads_with_debian_plugin(table_file):
    path, _ = table_file
    expected = table_expected(TABLE_CHANNELS, ROWS)
    got = read_lz4_with(DEBIAN_PLUGIN_DIR, path, ["/15/count", "/15/u8", "/15/gust"])
    assert got["/15/count"] == expected["count"]
    assert got["/15/u8"] == expected["u8"]
    np.testing.assert_array_equal(np.array(got["/15/gust"], dtype=np.float32),
                                  np.array(expected["gust"], dtype=np.float32))


# ---- records -------------------------------------------------------------------

RECORDS_BODY = """\
streams:
  - name: dust
    match: { key: "{board}/{channel}" }
    group: "/dust/{board}"
    layout: records
    samples: 1000
    dt: 2.0e-8
    record_timeout: 3s
    event_fields: { mass: float32, velocity: float64, n: int32 }
    attrs: { detector: "dust accelerator" }
    channels:
      first:  { dtype: float32, units: V, compression: lz4, chunk: 2 }
      second: { dtype: int16, units: V, chunk: 3 }
      third:  { dtype: float64, compression: deflate, chunk: 1 }
      fourth: { dtype: uint8, chunk: 4 }
      fifth:  { dtype: int16, chunk: 1 }
      sixth:  { dtype: float32, chunk: 2, compression: deflate, shuffle: false }
"""
EVENTS = 23
REC_CHANNELS = [("first", "float32"), ("second", "int16"), ("third", "float64"),
                ("fourth", "uint8"), ("fifth", "int16"), ("sixth", "float32")]


@pytest.fixture(scope="module")
def records_file(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("records")
    schema, out = write_schema(tmp, RECORDS_BODY.replace("listen", "listen"), name="acc")
    stats = run_gen(schema, "records", EVENTS)
    [path] = files(out)
    return path, stats


def test_records_values_exact(records_file):
    path, stats = records_file
    with h5py.File(path, "r") as f:
        g = f["dust/b1"]
        np.testing.assert_array_equal(g["time"][:], T0 + np.arange(EVENTS) * SEC)
        np.testing.assert_array_equal(g["event_id"][:], np.arange(EVENTS) + 1)
        np.testing.assert_array_equal(g["mass"][:], (np.arange(EVENTS)).astype(np.float32))
        np.testing.assert_array_equal(g["velocity"][:], np.arange(EVENTS) + 0.25)
        np.testing.assert_array_equal(g["n"][:], np.arange(EVENTS))  # 0.5 truncates
        np.testing.assert_array_equal(g["sample_time"][:], np.arange(1000) * 2.0e-8)
        for c, (name, dtype) in enumerate(REC_CHANNELS):
            ds = g[name]
            assert ds.shape == (EVENTS, 1000) and ds.dtype == np.dtype(dtype)
            assert ds.maxshape == (None, 1000)
            data = ds[:]
            for e in range(EVENTS):
                if c == 0 and e % 4 == 3:
                    assert np.isnan(data[e]).all(), e
                elif c == 4 and e % 5 == 2:
                    assert (data[e] == 0).all(), e  # int16 without declared fill
                else:
                    np.testing.assert_array_equal(data[e], waveform(e, c, 1000).astype(dtype))
            assert [list(d.keys()) for d in ds.dims] == [["time"], ["sample_time"]]
        assert g["first"].attrs["dt"] == 2.0e-8
        assert g.attrs["board"] == "b1" and g.attrs["detector"] == "dust accelerator"
    # events 3, 7, 11, 15, 19 miss channel 0; the last ones close at file close
    assert int(stats["missing_channels"]) >= 4


def test_records_state_tells_missing_from_not_yet(records_file):
    """Every row says how its record ended: complete, or incomplete (closed
    with channels missing, which keep their fill); 0 (open) is never left
    in a closed file."""
    path, _ = records_file
    with h5py.File(path, "r") as f:
        g = f["dust/b1"]
        state = g["record_state"][:]
        assert state.dtype == np.uint8 and [list(d.keys()) for d in g["record_state"].dims] \
            == [["time"]]
        expected = [2 if e % 4 == 3 or e % 5 == 2 else 1 for e in range(EVENTS)]
        np.testing.assert_array_equal(state, expected)
        np.testing.assert_array_equal(g["record_state"].attrs["flag_values"], [0, 1, 2])
    with xr.open_dataset(path, group="/dust/b1", engine="netcdf4") as ds:
        assert ds["record_state"].attrs["flag_meanings"] == "open complete incomplete"
        assert ds["record_state"].dims == ("time",)


@pytest.mark.parametrize("engine", ["netcdf4", "h5netcdf"])
def test_records_xarray(records_file, engine):
    path, _ = records_file
    with xr.open_dataset(path, group="/dust/b1", engine=engine) as ds:
        assert ds["time"].dtype == np.dtype("datetime64[ns]")
        assert ds["second"].dims == ("time", "sample_time")
        assert ds["mass"].dims == ("time",)
        np.testing.assert_array_equal(ds["second"].values[5], waveform(5, 1, 1000))
    res = subprocess.run(["ncdump", "-h", path], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "float first(time, sample_time)" in res.stdout


# ---- stream --------------------------------------------------------------------

STREAM_BODY = """\
streams:
  - name: adc
    match: { key: "{board}/{channel}" }
    group: "/{board}"
    layout: stream
    channels:
      a0: { dtype: int16, chunk: 4096, scale_factor: 0.001, add_offset: 1, dt: 1e-6 }
      a1: { dtype: float32, chunk: 1000, compression: lz4, dt: 1e-6 }
      a2: { dtype: int8, chunk: 1000, dt: 1e-3, compression: deflate }
      a3: { dtype: uint64, chunk: 333, dt: 1e-3 }
"""
FRAMES = 30


def test_stream_values_and_frame_index(tmp_path):
    schema, out = write_schema(tmp_path, STREAM_BODY, name="dig")
    stats = run_gen(schema, "stream", FRAMES)
    [path] = files(out)
    sizes = 1000 + 37 * np.arange(FRAMES)
    total = int(sizes.sum())
    clipped = 0
    with h5py.File(path, "r") as f:
        g = f["b1"]
        for c, (name, dtype) in enumerate([("a0", "int16"), ("a1", "float32"), ("a2", "int8"),
                                           ("a3", "uint64")]):
            raw = (np.arange(total) + 11 * c) % 30000
            if dtype in INT_RANGES:
                lo, hi = INT_RANGES[dtype]
                clipped += int(((raw < lo) | (raw > hi)).sum())
                raw = np.clip(raw, lo, hi)
            np.testing.assert_array_equal(g[name][:], raw.astype(dtype))
            np.testing.assert_array_equal(g[f"{name}_frame_start"][:],
                                          np.concatenate([[0], np.cumsum(sizes)[:-1]]))
            np.testing.assert_array_equal(g[f"{name}_frame_seq"][:], np.arange(FRAMES) + 1)
            np.testing.assert_array_equal(g[f"{name}_frame_time"][:],
                                          T0 + np.arange(FRAMES) * SEC)
            assert list(g[f"{name}_frame_start"].dims[0].keys()) == [f"{name}_frame_time"]
        assert g["a0"].attrs["scale_factor"] == 0.001 and g["a0"].attrs["dt"] == 1e-6
        assert g["a0"].attrs["start_time"] == T0
        assert g["a0"].attrs["end_time"] == T0 + (FRAMES - 1) * SEC + round((sizes[-1] - 1) * 1e3)
    assert int(stats["samples_clipped"]) == clipped
    assert int(stats["samples_written"]) == 4 * total
    res = subprocess.run(["ncdump", "-h", path], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr


def test_clipping_counted_and_bad_dtype_refused(tmp_path):
    schema, out = write_schema(tmp_path, TABLE_BODY, name="wx")
    stats = run_gen(schema, "clip")
    assert int(stats["bad_string_rc"]) == -22
    assert "not convertible" in stats["bad_string_message"]
    assert "/15/temperature" in stats["bad_string_message"]
    [path] = files(out)
    with h5py.File(path, "r") as f:
        g = f["15"]
        assert list(g["i8"][:]) == [127, -128, 127, -128, 42]
        assert list(g["u8"][:]) == [255, 0, 255, 0, 42]
        assert list(g["count"][:]) == [32767, -32768, 32767, -32768, 42]
        assert list(g["big"][:])[2:] == [10**6, 0, 42]
        assert g["temperature"][2] == np.float32(1e6)
    # 1e300 and -1e300 clip in every numeric channel but float64 (wind); 1e6
    # and -1e6 clip in the 8/16-bit ones and -1e6 in the unsigned ones
    assert int(stats["samples_clipped"]) > 0


def test_string_rows_written_once_despite_frequent_flushes(tmp_path):
    # one flush per row: a chunk's variable-length strings must not be
    # rewritten (and left in the global heap) at every flush
    body = """\
streams:
  - name: weather
    match: { measurement: weather }
    group: "/{station}"
    layout: table
    channels:
      status: { dtype: string, chunk: 4096 }
"""
    schema, out = write_schema(tmp_path, body, name="s")
    run_gen(schema, "table", 3000)
    [path] = files(out)
    assert os.path.getsize(path) < 1_000_000
    with h5py.File(path, "r") as f:
        got = [s.decode() for s in f["15/status"][:]]
    assert got == [f"s{i}" for i in range(3000) if i % 5 != 4]
