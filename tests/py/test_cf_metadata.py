"""Metadata as CF and its readers expect it (issue 15 §2).

The root group says which CF version the files meet (`Conventions`), text
attributes are variable-length UTF-8 so that h5py 3 reads them as str as
netCDF4 and xarray do (fixed-length ones read as bytes, and
`attrs['units'] == 'degC'` was False), and every attached dimension scale
is labelled with its name (`dims[0].label` was ''). Checked with h5py,
netCDF4, xarray's two engines and ncdump on a file the real daemon wrote.
"""
import socket
import subprocess

import h5py
import netCDF4
import xarray as xr

from recorder_fixture import T0
from recorder_fixture import recorder  # noqa: F401 (pytest fixture)
from reliability_helpers import wait_for

STREAM = """
- name: lab
  match: { measurement: lab }
  group: "/{bench}"
  layout: table
  attrs: { institution: "Example Lab" }
  channels:
    temp: { dtype: float32, units: degC, long_name: "air temperature" }
    raw:  { dtype: int16, scale_factor: 0.001, units: V }
"""


def record(recorder, streams=STREAM, lines=None):
    rec = recorder(streams, listen=[{"protocol": "line", "transport": "tcp"}])
    lines = lines or [f"lab,bench=b1 temp=20.5,raw=1000i {T0 + k * 10**9}\n" for k in range(3)]
    with socket.create_connection(rec.bound[0][1], timeout=30) as sock:
        sock.sendall("".join(lines).encode())
    wait_for(lambda: rec.status()["counters"]["lines"] == len(lines), what="the lines")
    rec.stop()
    return rec.the_file()


def ncdump_header(path, group="b1"):
    return subprocess.run(["ncdump", "-h", path], capture_output=True, text=True, timeout=60,
                          check=True).stdout


def test_text_attributes_are_str_everywhere_and_conventions_named(recorder):
    path = record(recorder)
    with h5py.File(path, "r") as f:
        assert f.attrs["Conventions"] == "CF-1.8"
        assert f.attrs["schema_name"] == "e2e"
        g = f["b1"]
        assert g.attrs["institution"] == "Example Lab"
        assert g.attrs["bench"] == "b1"
        assert g["temp"].attrs["units"] == "degC"
        assert g["temp"].attrs["long_name"] == "air temperature"
        t = g["time"].attrs
        assert (t["units"], t["calendar"], t["standard_name"]) == (
            "nanoseconds since 1970-01-01T00:00:00Z", "standard", "time")
        for name in ("temp", "raw", "time"):
            assert isinstance(g[name].attrs["units"], str), name
        cset = g["temp"].attrs.get_id("units").get_type().get_cset()
        assert cset == h5py.h5t.CSET_UTF8

    with netCDF4.Dataset(path) as nc:
        assert nc.getncattr("Conventions") == "CF-1.8"
        assert nc["b1"].getncattr("institution") == "Example Lab"
        assert nc["b1"]["temp"].getncattr("units") == "degC"
    for engine in ("netcdf4", "h5netcdf"):
        with xr.open_dataset(path, engine=engine) as root:
            assert root.attrs["Conventions"] == "CF-1.8", engine
        with xr.open_dataset(path, group="/b1", engine=engine) as ds:
            assert ds.attrs["institution"] == "Example Lab", engine
            assert ds["temp"].attrs["units"] == "degC", engine
            assert ds["raw"].attrs["units"] == "V", engine
            assert str(ds["time"].dtype).startswith("datetime64"), engine

    dump = ncdump_header(path)
    assert ':Conventions = "CF-1.8"' in dump, dump
    assert 'temp:units = "degC"' in dump, dump
    assert ':institution = "Example Lab"' in dump, dump


def test_dimension_scales_are_labelled_with_their_names(recorder):
    path = record(recorder)
    with h5py.File(path, "r") as f:
        g = f["b1"]
        for name in ("temp", "raw"):
            assert g[name].dims[0].label == "time", name
            assert g[name].dims[0][0].name == "/b1/time"
    for engine in ("netcdf4", "h5netcdf"):
        with xr.open_dataset(path, group="/b1", engine=engine) as ds:
            assert ds["temp"].dims == ("time",), engine
