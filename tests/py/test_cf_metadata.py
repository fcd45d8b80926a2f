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
import numpy as np
import xarray as xr

from recorder_fixture import DATA, EVENT, T0, encode_frame, run_client
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


ATTRS_TOP = """
attrs: { title: "Bench 3 run", institution: "Example Lab", version: 3 }
"""
ATTRS_STREAM = """
- name: lab
  match: { measurement: lab }
  group: "/{bench}"
  layout: table
  attrs: { site: north, elevation_m: 412.5 }
  defaults: { attrs: { coupling: DC } }
  channels:
    temp: { dtype: float32, units: degC,
            attrs: { standard_name: air_temperature, comment: "PT100, 4-wire" } }
    raw:  { dtype: int16, scale_factor: 0.001, units: V,
            attrs: { gain: 2, range: [-10, 10], valid_range: [-10000, 10000],
                     filter_hz: [0.5, 1000.0] } }
    wet:  { dtype: float32 }
- name: dust
  match: { key: "dust/{channel}" }
  group: /dust
  layout: records
  samples: 4
  dt: 2.0e-8
  event_fields:
    mass: { dtype: float32, units: kg, long_name: "grain mass",
            attrs: { standard_name: mass, comment: "from the charge" } }
    velocity: { dtype: float32, units: "m/s" }
    note: string
  channels:
    first: { dtype: float32, units: V, attrs: { coupling: AC } }
"""


def test_user_attributes_keep_yaml_types_for_every_reader(recorder):
    rec = recorder(ATTRS_STREAM, top=ATTRS_TOP,
                   listen=[{"protocol": "line", "transport": "tcp"},
                           {"protocol": "frame", "transport": "tcp"}])
    lines = [f"lab,bench=b1 temp=20.5,raw=1000i {T0 + k * 10**9}\n" for k in range(3)]
    with socket.create_connection(rec.bound[0][1], timeout=30) as sock:
        sock.sendall("".join(lines).encode())
    frames = b""
    for e in (1, 2):
        wave = np.arange(4, dtype="<f4") + e
        frames += encode_frame(DATA, "dust/first", wave.tobytes(), dtype=9, seq=2 * e - 1,
                               t0=T0 + e * 10**9, event_id=e)
        frames += encode_frame(EVENT, "dust", f'mass={e}.5e-15,velocity={e}0,note="n{e}"'.encode(),
                               seq=2 * e, t0=T0 + e * 10**9, event_id=e)
    with socket.create_connection(rec.bound[1][1], timeout=30) as sock:
        sock.sendall(frames)
    wait_for(lambda: rec.status()["counters"]["lines"] == len(lines)
             and rec.status()["counters"]["frames"] == 4, what="data")
    rec.stop()
    path = rec.the_file()

    with h5py.File(path, "r") as f:
        assert f.attrs["title"] == "Bench 3 run" and f.attrs["version"] == 3
        assert f.attrs["version"].dtype == np.int64
        g = f["b1"]
        assert g.attrs["site"] == "north" and g.attrs["elevation_m"] == 412.5
        t = g["temp"].attrs
        assert t["standard_name"] == "air_temperature" and t["comment"] == "PT100, 4-wire"
        # defaults' attrs go to channels without attrs of their own (like any option)
        assert g["wet"].attrs["coupling"] == "DC" and "coupling" not in t
        r = g["raw"].attrs
        assert r["gain"] == 2 and r["gain"].dtype == np.int64
        assert list(r["range"]) == [-10, 10] and r["range"].dtype == np.int64
        assert list(r["filter_hz"]) == [0.5, 1000.0] and r["filter_hz"].dtype == np.float64
        d = f["dust"]
        m = d["mass"].attrs
        assert (m["units"], m["long_name"], m["standard_name"]) == ("kg", "grain mass", "mass")
        assert d["velocity"].attrs["units"] == "m/s"
        assert "units" not in d["note"].attrs
        assert d["first"].attrs["coupling"] == "AC"
        assert d["first"].dims[0].label == "time" and d["first"].dims[1].label == "sample_time"
        assert d["mass"].dims[0].label == "time"

    with netCDF4.Dataset(path) as nc:
        assert nc.getncattr("title") == "Bench 3 run" and nc.getncattr("version") == 3
        raw = nc["b1"]["raw"]
        assert list(raw.getncattr("valid_range")) == [-10000, 10000]
        assert nc["dust"]["mass"].getncattr("units") == "kg"
    for engine in ("netcdf4", "h5netcdf"):
        with xr.open_dataset(path, engine=engine) as root:
            assert root.attrs["title"] == "Bench 3 run", engine
        with xr.open_dataset(path, group="/b1", engine=engine) as ds:
            assert ds["temp"].attrs["standard_name"] == "air_temperature", engine
            assert list(ds["raw"].attrs["range"]) == [-10, 10], engine
            # valid_range is applied by CF decoding: the packed 1000 is within it
            np.testing.assert_allclose(ds["raw"].values, [1.0, 1.0, 1.0], err_msg=engine)
        with xr.open_dataset(path, group="/dust", engine=engine) as ds:
            assert ds["mass"].attrs["units"] == "kg", engine
            assert ds["mass"].attrs["standard_name"] == "mass", engine
            np.testing.assert_allclose(ds["mass"].values, [1.5e-15, 2.5e-15], rtol=1e-6)

    dump = ncdump_header(path)
    assert ':title = "Bench 3 run"' in dump, dump
    assert "raw:range = -10LL, 10LL" in dump, dump
    assert "raw:filter_hz = 0.5, 1000." in dump, dump
    assert 'mass:units = "kg"' in dump, dump


def test_check_prints_user_attributes_with_their_types(tmp_path):
    schema = tmp_path / "s.yaml"
    schema.write_text("name: s\noutput: { directory: out, file: \"s-{seq}.h5\" }\n"
                      + ATTRS_TOP.strip() + "\n"
                      "listen:\n  - { protocol: line, transport: tcp, address: \"7609\" }\n"
                      "  - { protocol: frame, transport: tcp, address: \"7610\" }\n"
                      "streams:" + "\n".join("  " + l for l in ATTRS_STREAM.splitlines()) + "\n")
    out = run_client(["check", schema]).stdout
    assert 'Conventions = "CF-1.8"' in out, out
    assert 'title = "Bench 3 run"' in out and "version = 3 (int64)" in out, out
    assert "range = [-10, 10] (int64[2])" in out, out
    assert "filter_hz = [0.5, 1000] (float64[2])" in out, out
    assert "units 'kg'" in out and 'standard_name = "mass"' in out, out
