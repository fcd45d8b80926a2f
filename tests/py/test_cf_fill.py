"""Declared fill values are missing values to every reader.

Lines that leave fields out store the channel's fill value. Readers mask
by the `_FillValue` attribute, not by HDF5's fill property: without it
ncdump printed -999 and both xarray engines returned -999. and -32.768
(-32768 unpacked by scale_factor) as if they were readings. Checked with
h5py, netCDF4, xarray's two engines and ncdump, with CF packing applied
on top of the mask; and `h5rec check` says what a missing value of an
integer channel without a fill reads as.
"""
import socket
import subprocess

import h5py
import netCDF4
import numpy as np
import xarray as xr

from recorder_fixture import T0, run_client
from recorder_fixture import recorder  # noqa: F401 (pytest fixture)
from reliability_helpers import wait_for

STREAM = """
- name: lab
  match: { measurement: lab }
  group: "/{bench}"
  layout: table
  channels:
    temp:  { dtype: float32, fill: -999, units: degC }
    wet:   { dtype: float64 }
    raw:   { dtype: int16, scale_factor: 0.001, fill: -32768, units: V }
    count: { dtype: int32 }
"""
# (temp, wet, raw, count) per row; None: the field is left out of the line
ROWS = [(20.5, 1.5, 1000, 7), (None, None, None, 8), (21.0, None, -2000, 9),
        (None, 2.5, 3000, None)]


def line(k, row):
    names = ("temp", "wet", "raw", "count")
    fields = ",".join(f"{n}={v}" + ("i" if n in ("raw", "count") else "")
                      for n, v in zip(names, row) if v is not None)
    return f"lab,bench=b1 {fields} {T0 + k * 10**9}\n"


def test_fill_values_are_masked_by_every_reader(recorder):
    rec = recorder(STREAM, listen=[{"protocol": "line", "transport": "tcp"}])
    with socket.create_connection(rec.bound[0][1], timeout=30) as sock:
        sock.sendall("".join(line(k, r) for k, r in enumerate(ROWS)).encode())
    wait_for(lambda: rec.status()["counters"]["lines"] == len(ROWS), what="the lines")
    rec.stop()
    path = rec.the_file()

    with h5py.File(path, "r") as f:
        g = f["b1"]
        for name, dtype, fill in (("temp", np.float32, -999), ("raw", np.int16, -32768)):
            attr = g[name].attrs["_FillValue"]
            assert attr.dtype == dtype and attr == fill, (name, attr, attr.dtype)
        assert np.isnan(g["wet"].attrs["_FillValue"])
        assert g["wet"].attrs["_FillValue"].dtype == np.float64
        # an integer channel without a declared fill keeps a real 0 unmasked
        assert "_FillValue" not in g["count"].attrs
        np.testing.assert_array_equal(g["temp"][...], [20.5, -999, 21.0, -999])
        np.testing.assert_array_equal(g["raw"][...], [1000, -32768, -2000, 3000])

    expect_temp = [20.5, np.nan, 21.0, np.nan]
    expect_raw = [1.0, np.nan, -2.0, 3.0]
    expect_wet = [1.5, np.nan, np.nan, 2.5]
    for engine in ("netcdf4", "h5netcdf"):
        with xr.open_dataset(path, group="/b1", engine=engine) as ds:
            np.testing.assert_allclose(ds["temp"].values, expect_temp, err_msg=engine)
            np.testing.assert_allclose(ds["raw"].values, expect_raw, err_msg=engine)
            np.testing.assert_allclose(ds["wet"].values, expect_wet, err_msg=engine)
            np.testing.assert_array_equal(ds["count"].values, [7, 8, 9, 0])

    with netCDF4.Dataset(path) as nc:
        v = nc["b1"]["temp"][:]
        assert list(np.ma.getmaskarray(v)) == [False, True, False, True]
        r = nc["b1"]["raw"][:]
        assert list(np.ma.getmaskarray(r)) == [False, True, False, False]
        np.testing.assert_allclose(r.compressed(), [1.0, -2.0, 3.0])

    dump = subprocess.run(["ncdump", "-v", "temp,raw", "-g", "b1", path], capture_output=True,
                          text=True, timeout=60, check=True).stdout
    assert "temp:_FillValue = -999.f" in dump, dump
    assert "raw:_FillValue = -32768s" in dump, dump
    assert "temp = 20.5, _, 21, _" in dump, dump
    assert "raw = 1000, _, -2000, 3000" in dump, dump


def test_check_says_what_a_missing_integer_reads_as(tmp_path):
    schema = tmp_path / "s.yaml"
    schema.write_text("name: s\noutput: { directory: out, file: \"s-{seq}.h5\" }\n"
                      "listen:\n  - { protocol: line, transport: tcp, address: \"7609\" }\n"
                      "streams:" + "\n".join("  " + l for l in STREAM.splitlines()) + "\n")
    out = run_client(["check", schema]).stdout
    assert "_FillValue -999" in out and "_FillValue -32768" in out, out
    assert "no fill: a missing value reads as 0" in out, out
