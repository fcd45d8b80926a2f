"""Helpers shared by the storage-engine tests (test_engine*.py).

The tests drive the engine through tests/tools/h5w_gen.c, which writes
deterministic data, then read the files back with the real readers.
"""
import glob
import os
import subprocess
import textwrap

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("H5REC_SOURCE_DIR", os.path.dirname(os.path.dirname(HERE)))
TOOLS = os.environ.get("H5REC_TOOLS_DIR", os.path.join(SOURCE, "build-engine", "tests", "tools"))
PLUGIN_DIR = os.environ.get("H5REC_PLUGIN_DIR", os.path.join(SOURCE, "build-engine", "plugins"))
DEBIAN_PLUGIN_DIR = "/usr/lib/x86_64-linux-gnu/hdf5/serial/plugins"
GEN = os.path.join(TOOLS, "h5w_gen")

# Our LZ4 plugin must be found by h5py in this process.
os.environ.setdefault("HDF5_PLUGIN_PATH", PLUGIN_DIR)

T0 = 1767323045000000000
SEC = 1000000000

LISTEN_LINE = '  - { protocol: line, transport: tcp, address: "127.0.0.1:7601" }\n'
LISTEN_FRAME = '  - { protocol: frame, transport: tcp, address: "127.0.0.1:7701" }\n'


def write_schema(tmp_path, body, output="", name="t"):
    """A schema with output under tmp_path; BODY is the streams: section."""
    out = os.path.join(str(tmp_path), "out")
    text = (f"name: {name}\noutput:\n  directory: {out}\n"
            + textwrap.indent(textwrap.dedent(output), "  ")
            + "listen:\n" + (LISTEN_LINE if "measurement" in body else LISTEN_FRAME)
            + textwrap.dedent(body))
    if "file:" not in output:
        text = text.replace("output:\n", 'output:\n  file: "{name}-{seq}.h5"\n', 1)
    path = os.path.join(str(tmp_path), "schema.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path, out


def run_gen(schema, mode, *args, timeout=120, env=None):
    """Run h5w_gen; returns its 'key value' output lines as a dict."""
    res = subprocess.run([GEN, schema, mode] + [str(a) for a in args], capture_output=True,
                         text=True, timeout=timeout, env=env)
    assert res.returncode == 0, f"h5w_gen failed: {res.stderr}\n{res.stdout}"
    stats = {}
    for line in res.stdout.splitlines():
        key, _, value = line.partition(" ")
        stats[key] = value
    return stats


def files(out, pattern="*.h5"):
    return sorted(glob.glob(os.path.join(out, pattern)))


# ---- expected values (mirror h5w_gen.c) -------------------------------------

INT_RANGES = {
    "int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767), "uint16": (0, 65535),
    "int32": (-2**31, 2**31 - 1), "uint32": (0, 2**32 - 1),
    "int64": (-2**63, 2**63 - 1), "uint64": (0, 2**64 - 1),
}


def table_expected(channels, rows):
    """channels: list of (name, dtype, own_time, fill). Returns {name: values}
    for the shared axis (own_time channels: their own rows)."""
    out = {}
    for c, (name, dtype, own_time, fill) in enumerate(channels):
        vals = []
        for i in range(rows):
            absent = (i + c) % 5 == 4
            if own_time:
                if i % 3 == 0 and not absent:
                    vals.append(i * 0.5 + c)
                continue
            if absent:
                vals.append(fill)
            elif dtype == "string":
                vals.append(f"s{i}")
            elif dtype.startswith("float"):
                vals.append(i * 0.5 + c)
            else:
                vals.append((i * 3 + c) % 100)
        out[name] = vals
    return out


def waveform(e, c, samples):
    return (e * 7 + c * 3 + np.arange(samples)) % 101


def assert_same(actual, expected):
    a = np.asarray(actual)
    e = np.asarray(expected, dtype=a.dtype if a.dtype.kind != "O" else object)
    if a.dtype.kind == "f":
        np.testing.assert_array_equal(np.isnan(a), np.isnan(e.astype(a.dtype)))
        np.testing.assert_array_equal(a[~np.isnan(a)], e.astype(a.dtype)[~np.isnan(a)])
    else:
        np.testing.assert_array_equal(a, e)
