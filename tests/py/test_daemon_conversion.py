"""Acceptance: samples are stored in the channel's dtype as HDF5 converts them
(SPEC §3.1: "converted to the channel's dtype as HDF5 would (clipping)").

Every wire dtype (frames) and every line-protocol value type is sent into
channels of several dtypes, with values at and beyond every range; the file
must hold exactly what HDF5's own H5Tconvert makes of them (h5py.h5t.convert
computes the expectation in this process).
"""
import socket

import h5py
import numpy as np

from recorder_fixture import DATA, DTYPES, SEC, T0, encode_frame
from recorder_fixture import recorder  # noqa: F401 (pytest fixture)

TARGETS = {"c_int8": "int8", "c_uint16": "uint16", "c_int64": "int64",
           "c_float32": "float32", "c_float64": "float64"}
STREAMS = """
- name: conv
  match: { key: "{wire}/{channel}" }
  group: "/{wire}"
  layout: stream
  defaults: { dt: 1.0e-6, chunk: 64 }
  channels:
""" + "".join(f"    {name}: {{ dtype: {dtype} }}\n" for name, dtype in TARGETS.items()) + """
- name: lines
  match: { measurement: m }
  group: "/line_{kind}"
  layout: table
  defaults: { chunk: 64 }
  channels:
""" + "".join(f"    {name}: {{ dtype: {dtype} }}\n" for name, dtype in TARGETS.items())
LISTEN = [{"protocol": "frame", "transport": "tcp"}, {"protocol": "line", "transport": "tcp"}]


def wire_values(code):
    dt = np.dtype(DTYPES[code])
    if dt.kind == "f":
        info = np.finfo(dt)
        vals = [0, -0.0, 1.5, -1.5, 2.5, -2.5, 127.9, 128.5, -129.5, 65535.5, 65536.0,
                1e10, -1e10, 2.0**63, -2.0**63, 2.0**64, float(info.max), float(info.min),
                float(info.tiny), np.inf, -np.inf, np.nan]
    else:
        info = np.iinfo(dt)
        vals = [0, 1, -1, 127, 128, -128, -129, 255, 256, 32767, 32768, 65535, 65536,
                2**31 - 1, 2**31, 2**32, 2**63 - 1, 2**64 - 1, -2**63, info.min, info.max]
        vals = [v for v in vals if info.min <= v <= info.max]
    return np.array(vals, dtype=dt)


def hdf5_converts(values, target):
    """(expected, mask): what HDF5 makes of `values` in `target`, and which
    positions to compare.

    H5Tconvert (h5py.h5t.convert) is the oracle, except for floating point
    into integers, where this process's H5Tconvert - without the exception
    callback the recorder installs - wraps a value that is just out of range
    (float32 2**63 into int64 gives INT64_MIN). There the rule SPEC §3.1
    states is the oracle: truncate towards zero, clip to the range, +-inf to
    the limits. NaN has no integer value; it is counted, not compared."""
    src = h5py.h5t.py_create(values.dtype)
    dst = h5py.h5t.py_create(np.dtype(target))
    width = max(values.dtype.itemsize, np.dtype(target).itemsize)
    buf = np.zeros(len(values) * width, dtype=np.uint8)
    buf[:values.nbytes] = np.frombuffer(values.tobytes(), dtype=np.uint8)
    h5py.h5t.convert(src, dst, len(values), buf)
    want = np.frombuffer(buf[:len(values) * np.dtype(target).itemsize].tobytes(), dtype=target)
    mask = np.ones(len(values), dtype=bool)
    if values.dtype.kind == "f" and np.dtype(target).kind in "iu":
        info = np.iinfo(target)
        mask = ~np.isnan(values)
        want = np.array([0 if np.isnan(v) else
                         info.max if v >= float(info.max) else
                         info.min if v <= float(info.min) else int(np.trunc(v))
                         for v in values.astype(np.float64)], dtype=target)
    return want, mask


LINE_VALUES = {
    "float": ["0", "1.5", "-1.5", "2.5", "127.9", "-129.5", "65536", "1e10", "-1e10",
              "1e300", "-1e300", "1e-300"],
    "int": ["0i", "1i", "-1i", "127i", "128i", "-129i", "65536i", "9223372036854775807i",
            "-9223372036854775808i"],
    "uint": ["0u", "255u", "256u", "65535u", "65536u", "18446744073709551615u"],
    "bool": ["true", "false", "t", "F"],
}


def line_as_numpy(kind, text):
    if kind == "float":
        return np.array([float(t) for t in text], dtype=np.float64)
    if kind == "int":
        return np.array([int(t[:-1]) for t in text], dtype=np.int64)
    if kind == "uint":
        return np.array([int(t[:-1]) for t in text], dtype=np.uint64)
    return np.array([t in ("true", "t", "T", "True", "TRUE") for t in text], dtype=np.uint8)


def test_wire_dtypes_convert_as_hdf5_does(recorder):
    rec = recorder(STREAMS, listen=LISTEN)
    sent = {code: wire_values(code) for code in DTYPES}
    with socket.create_connection(("127.0.0.1", rec.port(0)), timeout=5) as sock:
        seq = 1
        for code, values in sent.items():
            for channel in TARGETS:
                sock.sendall(encode_frame(DATA, f"w{code}/{channel}", values.tobytes(),
                                          dtype=code, seq=seq, t0=T0))
                seq += 1
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(10)
        assert sock.recv(1) == b""
    with socket.create_connection(("127.0.0.1", rec.port(1)), timeout=5) as sock:
        for kind, texts in LINE_VALUES.items():
            for i, text in enumerate(texts):
                fields = ",".join(f"{name}={text}" for name in TARGETS)
                sock.sendall(f"m,kind={kind} {fields} {T0 + i * SEC}\n".encode())
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(10)
        assert sock.recv(1) == b""
    log = rec.stop()
    assert "bad_lines" not in log and "bad_data" not in log, log

    # Under SWMR the line groups go into a second file when the first flush
    # (with its file) came between the two connections: read them as one.
    f = rec.recording()
    for code, values in sent.items():
        for channel, target in TARGETS.items():
            got = f[f"w{code}/{channel}"][...]
            want, mask = hdf5_converts(values, target)
            assert got.dtype == np.dtype(target)
            assert np.array_equal(got[mask], want[mask], equal_nan=got.dtype.kind == "f"), \
                f"{DTYPES[code]} -> {target}: sent {values}, stored {got}, want {want}"
    for kind, texts in LINE_VALUES.items():
        values = line_as_numpy(kind, texts)
        for channel, target in TARGETS.items():
            got = f[f"line_{kind}/{channel}"][...]
            want, mask = hdf5_converts(values, target)
            assert np.array_equal(got[mask], want[mask], equal_nan=got.dtype.kind == "f"), \
                f"line {kind} -> {target}: sent {texts}, stored {got}, want {want}"
