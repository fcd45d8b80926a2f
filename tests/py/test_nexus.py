"""Files that plot themselves: every group is a NeXus NXdata (signal,
auxiliary signals, axes with their indices) and the root names the first
group as its default, so silx (Debian python3-silx) finds the plot with no
clicks: a weather table against `time`, accelerator waveforms against
`time` and `sample_time`. h5py, netCDF4, both xarray engines and ncdump
read the files as before, the NeXus attributes being plain attributes."""
import socket
import subprocess

import h5py
import numpy as np
import pytest
import xarray as xr

from recorder_fixture import DATA, EVENT, FLAG_ACK, T0, WEATHER_STREAM, encode_frame
from recorder_fixture import recorder  # noqa: F401 (pytest fixture)
from reliability_helpers import wait_for

nxdata = pytest.importorskip("silx.io.nxdata")

DUST = """
- name: dust
  match: { key: "dust/{channel}" }
  group: /dust
  layout: records
  samples: 100
  dt: 2.0e-8
  event_fields: { mass: float32 }
  defaults: { dtype: float32, units: V }
  channels: { first_detector: {}, second_detector: {} }
"""


def readers_agree(path, group, name):
    """h5py, both xarray engines and ncdump read NAME of GROUP alike."""
    with h5py.File(path, "r") as f:
        data = f[group][name][...]
    for engine in ("netcdf4", "h5netcdf"):
        with xr.open_dataset(path, group=group, engine=engine) as ds:
            np.testing.assert_array_equal(ds[name].values, data)
            assert ds.attrs["NX_class"] == "NXdata"
    res = subprocess.run(["ncdump", "-h", path], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and 'NX_class = "NXdata"' in res.stdout, res.stderr
    return data


def test_weather_table_plots_against_time(recorder):
    rec = recorder(WEATHER_STREAM, listen=[{"protocol": "line", "transport": "tcp"}])
    with socket.create_connection(rec.bound[0][1], timeout=5) as s:
        s.sendall("".join(f"weather,station=s{i % 2} temperature={i} {T0 + i}\n"
                          for i in range(10)).encode())
    wait_for(lambda: rec.status()["counters"]["lines"] == 10, what="10 lines")
    rec.stop()
    path = rec.the_file()
    with h5py.File(path, "r") as f:
        default = nxdata.get_default(f)
        assert default is not None and default.is_valid
        assert default.group.name in ("/s0", "/s1")
        plot = nxdata.NXdata(f["s1"])
        assert plot.is_valid and plot.signal_name == "temperature"
        assert plot.axes_dataset_names == ["time"] and plot.is_curve
        np.testing.assert_array_equal(plot.axes[0][...], f["s1/time"][...])
    assert readers_agree(path, "s1", "temperature").tolist() == [1, 3, 5, 7, 9]


def test_accelerator_waveforms_plot_against_sample_time(recorder):
    rec = recorder(DUST, listen=[{"protocol": "frame", "transport": "tcp"}])
    wave = np.linspace(-1, 1, 100, dtype=np.float32)
    with socket.create_connection(rec.bound[0][1], timeout=5) as s:
        seq = 0
        for e in (1, 2):
            for ftype, key, payload, dtype in ((EVENT, "dust", b"mass=2.5", 0),
                                               (DATA, "dust/first_detector", wave.tobytes(), 9),
                                               (DATA, "dust/second_detector", wave.tobytes(), 9)):
                seq += 1
                s.sendall(encode_frame(ftype, key, payload, dtype=dtype, seq=seq, t0=T0 + e,
                                       event_id=e, flags=FLAG_ACK))
        wait_for(lambda: rec.status()["counters"]["frames"] == 6, what="6 frames")
    rec.stop()
    path = rec.the_file()
    with h5py.File(path, "r") as f:
        assert f.attrs["default"] == "dust"
        plot = nxdata.get_default(f)
        assert plot is not None and plot.is_valid
        assert plot.signal_name == "first_detector"
        assert plot.axes_dataset_names == ["time", "sample_time"]
        assert [a.name for a in plot.auxiliary_signals] == ["/dust/second_detector"]
        np.testing.assert_allclose(plot.axes[1][...], np.arange(100) * 2.0e-8)
    np.testing.assert_array_equal(readers_agree(path, "dust", "first_detector")[1], wave)
