"""Acceptance: compression: szip (HDF5 filter 4), with Fletcher-32, recorded
by the real daemon and read back by HDF5's own szip decoder through every
reader a user has: h5py, h5dump, netCDF4 and xarray, h5repack and h5stat.

The engine encodes szip chunks itself, in its compression pool, with libaec
(h5w_pipeline.c); nothing but HDF5's decoder reads them here. The data are
digitizer-like: int16 sine waves with noise in a `stream` layout (several
flushes, so partial chunks are rewritten in their padded slots), and
float32 detector waveforms of 14-bit resolution in a `records` layout.
"""
import re
import socket
import subprocess
import time

import h5py
import netCDF4
import numpy as np
import pytest
import xarray as xr

from recorder_fixture import DATA, EVENT, SEC, T0, Recorder, encode_frame, run_client

SZIP, FLETCHER32 = 4, 3
SAMPLES = 20000  # per waveform
STREAMS = f"""
- name: dust
  match: {{ key: "dust/{{channel}}" }}
  group: /dust
  layout: records
  samples: {SAMPLES}
  dt: 2.0e-8
  event_fields: {{ mass: float32 }}
  defaults: {{ dtype: float32, chunk: 4, compression: szip, szip_pixels_per_block: 16,
              fletcher32: true }}
  channels: {{ first: {{}}, second: {{ szip_coding: ec }} }}
- name: adc
  match: {{ key: "{{board}}/{{channel}}" }}
  group: "/{{board}}"
  layout: stream
  defaults: {{ dtype: int16, dt: 1.0e-6, chunk: 16384, compression: szip, fletcher32: true }}
  channels:
    adc0: {{}}
    adc1: {{ szip_coding: ec, szip_pixels_per_block: 8 }}
"""
FRAMES = 12
FRAME_SAMPLES = 5000  # 60000 samples: three whole chunks and a partial one
EVENTS = 6            # one whole chunk of 4 records and a partial one


def adc_samples(channel, n):
    """A 16-bit digitizer: a sine over most of the range plus noise."""
    rng = np.random.default_rng(channel)
    t = np.arange(n)
    wave = 12000 * np.sin(2 * np.pi * t / (500 + 37 * channel)) + rng.normal(0, 6, n)
    return np.round(wave).astype("<i2")


def detector_waveforms(channel, events):
    """A detector: baseline with noise, a pulse per event, 14-bit steps."""
    rng = np.random.default_rng(100 + channel)
    t = np.arange(SAMPLES)
    out = np.empty((events, SAMPLES), dtype="<f4")
    for e in range(events):
        pulse = 0.8 * np.exp(-((t - 5000 - 300 * e) / 40.0) ** 2)
        v = 0.01 + pulse + rng.normal(0, 0.002, SAMPLES)
        out[e] = np.round(v * 8192) / 8192
    return out


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """Record both streams once; the tests read the file."""
    rec = Recorder(tmp_path_factory.mktemp("szip"), STREAMS,
                   [{"protocol": "frame", "transport": "tcp"}],
                   # both groups in one file: SWMR would start a new file for the second
                   output={"flush": "100ms", "swmr": "false"})
    rec.start()
    adc = {c: adc_samples(c, FRAMES * FRAME_SAMPLES) for c in (0, 1)}
    dust = {c: detector_waveforms(c, EVENTS) for c in (0, 1)}
    try:
        seq = iter(range(1, 10000))
        with socket.create_connection(("127.0.0.1", rec.port()), timeout=5) as sock:
            for k in range(FRAMES):
                for c in (0, 1):
                    part = adc[c][k * FRAME_SAMPLES:(k + 1) * FRAME_SAMPLES]
                    sock.sendall(encode_frame(DATA, f"board1/adc{c}", part.tobytes(), dtype=3,
                                              seq=next(seq),
                                              t0=T0 + k * FRAME_SAMPLES * 1000))
                if k % 4 == 3:
                    time.sleep(0.3)  # flushes: partial chunks written, then rewritten
            for e in range(EVENTS):
                when = T0 + (e + 1) * SEC
                sock.sendall(encode_frame(EVENT, "dust", f"mass={e}.5".encode(),
                                          seq=next(seq), t0=when, event_id=e + 1))
                for c, name in enumerate(("first", "second")):
                    sock.sendall(encode_frame(DATA, f"dust/{name}", dust[c][e].tobytes(),
                                              dtype=9, seq=next(seq), t0=when, event_id=e + 1))
                time.sleep(0.15)
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(10)
            assert sock.recv(1) == b""
        log = rec.stop()
    except BaseException:
        print(rec.log()[-20000:])
        rec.kill()
        raise
    assert "protocol_errors" not in log and "bad_data" not in log, log
    return rec.the_file(), adc, dust, rec


def test_h5py_reads_every_sample_back(recording):
    path, adc, dust, _ = recording
    with h5py.File(path, "r") as f:
        for c in (0, 1):
            ds = f[f"/board1/adc{c}"]
            assert ds.dtype == np.dtype("<i2")
            np.testing.assert_array_equal(ds[...], adc[c])
        for c, name in enumerate(("first", "second")):
            ds = f[f"/dust/{name}"]
            assert ds.shape == (EVENTS, SAMPLES)
            assert ds[...].tobytes() == dust[c].tobytes(), name


def test_datasets_declare_szip_then_fletcher32(recording):
    """HDF5's szip with the schema's coding and block, then the checksum;
    every chunk stored szip-coded (filter mask 0: HDF5's header, the chunk's
    size, comes first), and the nn datasets clearly smaller than raw even
    with the slots partial chunks keep (the ec ones need not be)."""
    path, *_ = recording
    nn, ec = h5py.h5z.SZIP_NN_OPTION_MASK, h5py.h5z.SZIP_EC_OPTION_MASK
    expect = {"/board1/adc0": (nn, 32), "/board1/adc1": (ec, 8),
              "/dust/first": (nn, 16), "/dust/second": (ec, 16)}
    with h5py.File(path, "r") as f:
        for name, (coding, block) in expect.items():
            ds = f[name]
            dcpl = ds.id.get_create_plist()
            pipeline = [dcpl.get_filter(i) for i in range(dcpl.get_nfilters())]
            assert [p[0] for p in pipeline] == [SZIP, FLETCHER32], name
            mask, ppb = pipeline[0][2][:2]
            assert mask & (nn | ec) == coding and ppb == block, (name, pipeline[0])
            assert ds.id.get_num_chunks() >= 2, name
            chunk_bytes = int(np.prod(ds.chunks)) * ds.dtype.itemsize
            for k in range(ds.id.get_num_chunks()):
                info = ds.id.get_chunk_info(k)
                assert info.filter_mask == 0, (name, k)
                mask, stored = ds.id.read_direct_chunk(info.chunk_offset)
                assert int.from_bytes(stored[:4], "little") == chunk_bytes, (name, k)
            if coding == nn:  # smooth waveforms: nn predicts them (ec codes values)
                chunks = ds.id.get_num_chunks() * chunk_bytes
                assert ds.id.get_storage_size() < 0.85 * chunks, name


def test_a_corrupted_chunk_fails_its_checksum(recording, tmp_path):
    """Fletcher-32 covers the szip-coded bytes as stored."""
    path, *_ = recording
    copy = tmp_path / "flipped.h5"
    copy.write_bytes(open(path, "rb").read())
    with h5py.File(path, "r") as f:
        info = f["/board1/adc0"].id.get_chunk_info(1)
    with open(copy, "r+b") as out:
        out.seek(info.byte_offset + info.size // 2)
        byte = out.read(1)
        out.seek(-1, 1)
        out.write(bytes([byte[0] ^ 0x10]))
    with h5py.File(copy, "r") as f:
        ds = f["/board1/adc0"]
        ds[:16384]  # chunk 0 intact
        with pytest.raises(OSError):
            ds[16384:32768]


def test_h5dump_decodes_szip(recording):
    path, adc, *_ = recording
    res = subprocess.run(["h5dump", "-p", "-d", "/board1/adc0", "-s", "20000", "-c", "40",
                          "-w", "0", path], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "SZIP" in res.stdout and "CHECKSUM FLETCHER32" in res.stdout, res.stdout
    data = res.stdout.split("DATA {", 1)[1].split("}", 1)[0]
    values = [int(v) for v in re.findall(r"-?\d+", re.sub(r"\(\d+\):", "", data))]
    assert values == adc[0][20000:20040].tolist()


def test_netcdf4_and_xarray_read_szip(recording):
    path, adc, dust, _ = recording
    with netCDF4.Dataset(path) as nc:
        v = nc["/board1"].variables["adc1"]
        assert v.filters()["szip"], v.filters()
        assert v.filters()["fletcher32"]
        np.testing.assert_array_equal(v[:], adc[1])
    with xr.open_dataset(path, group="dust", engine="netcdf4") as ds:
        assert ds["second"].values.tobytes() == dust[1].tobytes()
    with xr.open_dataset(path, group="board1", engine="h5netcdf", phony_dims="sort") as ds:
        np.testing.assert_array_equal(ds["adc0"].values, adc[0])


def test_h5repack_and_h5stat(recording, tmp_path):
    """HDF5's tools: h5repack decodes every chunk to store it raw (and the
    copy reads the same), h5stat counts the szip datasets."""
    path, adc, dust, _ = recording
    plain = tmp_path / "plain.h5"
    subprocess.run(["h5repack", "-f", "NONE", path, str(plain)], check=True, timeout=120,
                   capture_output=True)
    with h5py.File(plain, "r") as f:
        assert f["/board1/adc1"].id.get_create_plist().get_nfilters() == 0
        np.testing.assert_array_equal(f["/board1/adc1"][...], adc[1])
        assert f["/dust/first"][...].tobytes() == dust[0].tobytes()
    res = subprocess.run(["h5stat", path], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert re.search(r"SZIP filter: 4\n", res.stdout), res.stdout


def test_info_shows_szip(recording):
    """`h5rec info` names the filters HDF5 reports."""
    path, *_ = recording
    out = run_client(["info", path]).stdout
    assert "szip+fletcher32" in out, out


def test_check_shows_szip_options(recording):
    """`h5rec check` prints each channel's coding and block."""
    *_, rec = recording
    out = run_client(["check", rec.schema_path]).stdout
    assert "szip nn, 32 pixels per block, fletcher32" in out, out
    assert "szip ec, 8 pixels per block, fletcher32" in out, out
