"""LZ4 filter 32004: interoperability of h5rec's plugin with other readers
and writers (SPEC §5).

Independent implementations used here:
  * Debian's hdf5-filter-plugin (libh5lz4.so), through h5py and h5dump;
  * hdf5plugin.LZ4() as users write it (on Debian, hdf5plugin ships no
    compiled filters, so its LZ4 is again libh5lz4.so: the tests say which
    library did the work by looking at the process's memory map);
  * a reading and writing of the chunk format in this file, on python3-lz4.

HDF5 caches a plugin once loaded, so every read or write runs in its own
Python process whose HDF5_PLUGIN_PATH names a directory holding exactly one
LZ4 plugin; each process reports which one it actually mapped.
"""
import json
import os
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest

try:
    import lz4.block as lz4_block
except ImportError:  # python3-lz4: only the tests of the format itself need it
    lz4_block = None

PLUGIN_DIR = os.environ.get("H5REC_PLUGIN_DIR", "")
TOOLS_DIR = os.environ.get("H5REC_TOOLS_DIR", "")
DEBIAN_PLUGIN = "/usr/lib/x86_64-linux-gnu/hdf5/serial/plugins/libh5lz4.so"
OUR_PLUGIN_NAME = "libh5rec_lz4.so"

needs_debian = pytest.mark.skipif(not os.path.exists(DEBIAN_PLUGIN),
                                  reason="hdf5-filter-plugin not installed")
needs_python_lz4 = pytest.mark.skipif(lz4_block is None, reason="python3-lz4 not installed")

# Code shared by the child processes: data generation and a self-report.
PRELUDE = textwrap.dedent('''
    import json, os, sys
    import numpy as np
    import h5py

    DTYPES = ["i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f4", "f8"]

    def make(kind, dtype, n, seed):
        rng = np.random.default_rng(seed)
        if kind == "sine":
            v = np.floor(100 * np.sin(np.arange(n) / 300.0)) + rng.integers(0, 3, n)
            if np.dtype(dtype).kind == "u":
                v = v + 128
            return (v / 8 if np.dtype(dtype).kind == "f" else v).astype(dtype)
        if kind == "ramp":
            return (np.arange(n) % 1000).astype(dtype)
        return rng.integers(0, 256, n * np.dtype(dtype).itemsize,
                            dtype=np.uint8).view(dtype)

    def lz4_plugins_mapped():
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if ".so" in line}
        return sorted(p for p in paths
                      if "lz4" in os.path.basename(p) and "/liblz4" not in p)
''')


@pytest.fixture(scope="module")
def plugin_dirs(tmp_path_factory):
    """One directory per implementation, each with a single LZ4 plugin."""
    if not PLUGIN_DIR or not os.path.exists(os.path.join(PLUGIN_DIR, OUR_PLUGIN_NAME)):
        pytest.fail(f"H5REC_PLUGIN_DIR does not hold {OUR_PLUGIN_NAME}: {PLUGIN_DIR!r}")
    root = tmp_path_factory.mktemp("plugins")
    dirs = {"ours": root / "ours", "debian": root / "debian"}
    dirs["ours"].mkdir()
    os.symlink(os.path.realpath(os.path.join(PLUGIN_DIR, OUR_PLUGIN_NAME)),
               dirs["ours"] / OUR_PLUGIN_NAME)
    dirs["debian"].mkdir()
    if os.path.exists(DEBIAN_PLUGIN):
        os.symlink(DEBIAN_PLUGIN, dirs["debian"] / "libh5lz4.so")
    return {k: str(v) for k, v in dirs.items()}


def expected_plugin(plugin_dirs, which):
    return os.path.realpath(os.path.join(
        plugin_dirs[which], OUR_PLUGIN_NAME if which == "ours" else "libh5lz4.so"))


def run_python(plugin_dirs, which, code, *args, loads_plugin=True):
    """Run code in a child with only the `which` plugin on the path; the code
    sets `result`; returns it after checking that the right plugin, and only
    it, was loaded (or none, for code that only touches raw chunks)."""
    env = dict(os.environ, HDF5_PLUGIN_PATH=plugin_dirs[which])
    script = PRELUDE + textwrap.dedent(code) + textwrap.dedent('''
        print("RESULT " + json.dumps({"result": result, "mapped": lz4_plugins_mapped()}))
    ''')
    proc = subprocess.run([sys.executable, "-c", script, *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"child failed ({proc.returncode}):\n{proc.stderr}"
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")][-1]
    report = json.loads(line[len("RESULT "):])
    expect = [expected_plugin(plugin_dirs, which)] if loads_plugin else []
    assert report["mapped"] == expect, report["mapped"]
    return report["result"]


# Datasets written by h5py: (name, dtype, kind, shape, chunks, block size or None)
H5PY_CASES = (
    [(f"{dt}_{kind}_b{bs}", dt, kind, (30000,), (12000,), bs)
     for dt in ["i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f4", "f8"]
     for kind in ["sine", "random"] for bs in [None, 0, 1000]]
    + [("f4_sine_1mib_b0", "f4", "sine", (600000,), (262144,), 0),
       ("f4_random_1mib_b65536", "f4", "random", (600000,), (262144,), 65536),
       ("i4_ramp_b64", "i4", "ramp", (5000,), (4096,), 64),
       ("u1_single_byte_chunks", "u1", "sine", (5,), (1,), 0),
       ("f4_records", "f4", "sine", (3, 100000), (1, 100000), 0)]
)

WRITE_H5PY = '''
    import hdf5plugin
    cases = json.loads(sys.argv[2])
    with h5py.File(sys.argv[1], "w") as f:
        for i, (name, dt, kind, shape, chunks, bs) in enumerate(cases):
            data = make(kind, dt, int(np.prod(shape)), i).reshape(shape)
            opts = hdf5plugin.LZ4() if bs is None else hdf5plugin.LZ4(nbytes=bs)
            f.create_dataset(name, data=data, chunks=tuple(chunks), **opts)
    result = len(cases)
'''

READ_H5PY = '''
    cases = json.loads(sys.argv[2])
    bad = []
    with h5py.File(sys.argv[1], "r") as f:
        for i, (name, dt, kind, shape, chunks, bs) in enumerate(cases):
            expect = make(kind, dt, int(np.prod(shape)), i).reshape(shape)
            got = f[name][...]
            if got.dtype != expect.dtype or got.tobytes() != expect.tobytes():
                bad.append(name)
            dcpl = f[name].id.get_create_plist()
            if [dcpl.get_filter(k)[0] for k in range(dcpl.get_nfilters())] != [32004]:
                bad.append(name + ": pipeline is not just filter 32004")
    result = bad
'''


def write_read(plugin_dirs, tmp_path, writer, reader, prelude=""):
    path = tmp_path / f"{writer}-to-{reader}.h5"
    cases = json.dumps(H5PY_CASES)
    assert run_python(plugin_dirs, writer, WRITE_H5PY, path, cases) == len(H5PY_CASES)
    assert run_python(plugin_dirs, reader, prelude + textwrap.dedent(READ_H5PY), path,
                      cases) == []
    return path


@needs_debian
def test_files_written_through_ours_read_with_debian_plugin(plugin_dirs, tmp_path):
    write_read(plugin_dirs, tmp_path, "ours", "debian")


@needs_debian
def test_files_written_through_ours_read_with_hdf5plugin(plugin_dirs, tmp_path):
    write_read(plugin_dirs, tmp_path, "ours", "debian", prelude="import hdf5plugin\n")


@needs_debian
def test_hdf5plugin_files_read_through_ours(plugin_dirs, tmp_path):
    write_read(plugin_dirs, tmp_path, "debian", "ours")


READ_RAW_CHUNKS = '''
    out = {}
    with h5py.File(sys.argv[1], "r") as f:
        for name in f:
            ds = f[name]
            offsets = sorted(ds.id.get_chunk_info(k).chunk_offset
                             for k in range(ds.id.get_num_chunks()))
            out[name] = [ds.id.read_direct_chunk(o)[1].hex() for o in offsets]
    result = out
'''


@needs_debian
def test_chunks_are_byte_identical_to_debian_plugin(plugin_dirs, tmp_path):
    """Same data, same block size: the stored chunks are the same bytes."""
    ours = tmp_path / "ours.h5"
    theirs = tmp_path / "theirs.h5"
    cases = json.dumps(H5PY_CASES)
    run_python(plugin_dirs, "ours", WRITE_H5PY, ours, cases)
    run_python(plugin_dirs, "debian", WRITE_H5PY, theirs, cases)
    a = run_python(plugin_dirs, "ours", READ_RAW_CHUNKS, ours, loads_plugin=False)
    b = run_python(plugin_dirs, "ours", READ_RAW_CHUNKS, theirs, loads_plugin=False)
    assert sorted(a) == sorted(name for name, *_ in H5PY_CASES)
    for name in a:
        assert a[name] == b[name], name


def parse_chunk(raw):
    """The registered format, read independently of the C code."""
    size, block = struct.unpack_from(">QI", raw, 0)
    pos, out = 12, bytearray()
    while len(out) < size:
        n = min(block, size - len(out))
        (stored,) = struct.unpack_from(">I", raw, pos)
        pos += 4
        data = raw[pos:pos + stored]
        assert len(data) == stored and 0 < stored <= n
        out += data if stored == n else lz4_block.decompress(data, uncompressed_size=n)
        pos += stored
    assert pos == len(raw)
    return bytes(out), block


def build_chunk(data, block):
    """Encode like the format says, with python3-lz4 for the blocks."""
    block = min(block or len(data), len(data))
    out = struct.pack(">QI", len(data), block)
    for i in range(0, len(data), block):
        part = data[i:i + block]
        packed = lz4_block.compress(part, mode="default", store_size=False)
        if len(packed) >= len(part):
            packed = part
        out += struct.pack(">I", len(packed)) + packed
    return out


@needs_python_lz4
def test_our_chunks_decode_with_python_lz4(plugin_dirs, tmp_path):
    path = tmp_path / "ours.h5"
    cases = [c for c in H5PY_CASES if c[5] in (None, 1000, 65536)]
    run_python(plugin_dirs, "ours", WRITE_H5PY, path, json.dumps(cases))
    raw = run_python(plugin_dirs, "ours", READ_RAW_CHUNKS, path, loads_plugin=False)
    helpers = {}
    exec(PRELUDE, helpers)
    for i, (name, dt, kind, shape, chunks, bs) in enumerate(cases):
        chunk_bytes = int(np.prod(chunks)) * np.dtype(dt).itemsize
        decoded = b""
        for raw_chunk in raw[name]:
            data, block = parse_chunk(bytes.fromhex(raw_chunk))
            assert len(data) == chunk_bytes, name
            assert block == min(bs or chunk_bytes, chunk_bytes), name
            decoded += data
        expect = helpers["make"](kind, dt, int(np.prod(shape)), i).tobytes()
        assert decoded[:len(expect)] == expect, name


@needs_python_lz4
def test_python_built_chunks_read_through_ours(plugin_dirs, tmp_path):
    path = tmp_path / "python-built.h5"
    rng = np.random.default_rng(5)
    cases = {
        "whole": (np.arange(50000, dtype="i4") // 7, 0),
        "blocks_777": (np.arange(50000, dtype="i4") // 7, 777),
        "random_4096": (rng.random(30000).astype("f4"), 4096),
    }
    import h5py
    with h5py.File(path, "w") as f:
        for name, (data, block) in cases.items():
            ds = f.create_dataset(name, shape=data.shape, dtype=data.dtype, chunks=(10000,),
                                  compression=32004, compression_opts=(block,),
                                  allow_unknown_filter=True)
            for start in range(0, data.size, 10000):
                ds.id.write_direct_chunk((start,), build_chunk(data[start:start + 10000].tobytes(), block))
    got = run_python(plugin_dirs, "ours", '''
        with h5py.File(sys.argv[1], "r") as f:
            result = {name: f[name][...].tobytes().hex() for name in f}
    ''', path)
    for name, (data, block) in cases.items():
        assert bytes.fromhex(got[name]) == data.tobytes(), name


def test_c_written_file_reads_with_every_reader(plugin_dirs, tmp_path):
    """The recorder's way of writing (filter class linked in, direct chunk
    writes of h5lz4_encode output) read by h5py with each plugin."""
    tool = os.path.join(TOOLS_DIR, "lz4_testfile")
    path = tmp_path / "c-written.h5"
    subprocess.run([tool, str(path)], check=True, timeout=60)
    compare = '''
        bad, names = [], []
        with h5py.File(sys.argv[1], "r") as f:
            for name in f["lz4"]:
                names.append(name)
                if f["lz4"][name][...].tobytes() != f["ref"][name][...].tobytes():
                    bad.append(name)
        result = [bad, names]
    '''
    readers = ["ours"] + (["debian"] if os.path.exists(DEBIAN_PLUGIN) else [])
    for which in readers:
        bad, names = run_python(plugin_dirs, which, compare, path)
        assert bad == [] and len(names) == 33, (which, bad, names)


def h5dump(plugin_dir, path, dataset):
    env = dict(os.environ, HDF5_PLUGIN_PATH=plugin_dir)
    return subprocess.run(["h5dump", "-p", "-d", dataset, "-w", "0", str(path)], env=env,
                          capture_output=True, text=True, timeout=60)


def test_plugin_loads_into_plain_h5dump(plugin_dirs, tmp_path):
    path = tmp_path / "c-written.h5"
    subprocess.run([os.path.join(TOOLS_DIR, "lz4_testfile"), str(path)], check=True, timeout=60)
    for name in ["pipe_i4_b1000", "direct_f32_b4096", "records_f32"]:
        lz4 = h5dump(plugin_dirs["ours"], path, f"/lz4/{name}")
        ref = h5dump(plugin_dirs["ours"], path, f"/ref/{name}")
        assert lz4.returncode == 0, lz4.stderr
        assert "32004" in lz4.stdout
        data = lz4.stdout[lz4.stdout.index("DATA {"):]
        assert data == ref.stdout[ref.stdout.index("DATA {"):]
    missing = h5dump(str(tmp_path), path, "/lz4/pipe_i4_b1000")
    assert missing.returncode != 0  # proves the plugin, not a built-in, did the work


# Valid chunks come from our plugin (written through the filter, read back
# raw); then chunk 1 of each dataset is replaced by a corrupt version.
WRITE_CORRUPT = '''
    import struct
    corruptions = {
        "flipped_size": lambda c: c[:7] + bytes([c[7] ^ 0x01]) + c[8:],
        "truncated": lambda c: c[:len(c) // 2],
        "header_only": lambda c: c[:12],
        "size_larger_than_chunk": lambda c: struct.pack(">Q", 1 << 40) + c[8:],
        "zero_block_size": lambda c: c[:8] + struct.pack(">I", 0) + c[12:],
        "negative_block_size": lambda c: c[:8] + struct.pack(">I", 0x80000000) + c[12:],
        "stored_length_beyond_buffer": lambda c: c[:12] + struct.pack(">I", 0x7FFFFFF0) + c[16:],
        "stored_length_above_block": lambda c: c[:12] + struct.pack(">I", 1001) + c[16:],
        "garbage_lz4_block": lambda c: c[:16] + b"\\xff" * (len(c) - 16),
        # zero bytes after the blocks are padding (h5rec rewrites chunks in
        # place padded to their last size); anything else is garbage
        "trailing_garbage": lambda c: c + b"\\x5a\\0\\0\\0",
    }
    data = np.arange(40000, dtype="i4") // 5
    with h5py.File(sys.argv[1], "w") as f:
        for name, corrupt in corruptions.items():
            ds = f.create_dataset(name, data=data, chunks=(10000,), compression=32004,
                                  compression_opts=(1000,))
            mask, chunk = ds.id.read_direct_chunk((10000,))
            assert struct.unpack_from(">QI", chunk) == (40000, 1000)
            assert struct.unpack_from(">I", chunk, 12)[0] < 1000  # block 0 compressed
            ds.id.write_direct_chunk((10000,), corrupt(chunk))
    result = sorted(corruptions)
'''


def write_corrupt_file(plugin_dirs, path):
    return run_python(plugin_dirs, "ours", WRITE_CORRUPT, path)


def test_corrupt_chunks_are_read_errors_in_h5py(plugin_dirs, tmp_path):
    path = tmp_path / "corrupt.h5"
    names = write_corrupt_file(plugin_dirs, path)
    result = run_python(plugin_dirs, "ours", '''
        out = {}
        with h5py.File(sys.argv[1], "r") as f:
            for name in f:
                ok = f[name][:10000].tobytes() == (np.arange(10000, dtype="i4") // 5).tobytes()
                try:
                    f[name][10000:20000]
                    out[name] = [ok, "read without error"]
                except OSError as e:
                    out[name] = [ok, str(e)]
        result = out
    ''', path)
    assert len(names) == 10 and sorted(result) == names
    for name, (intact_ok, error) in result.items():
        assert intact_ok, name
        assert "filter returned failure" in error or "lz4" in error, (name, error)


def test_corrupt_chunk_is_an_h5dump_error_not_a_crash(plugin_dirs, tmp_path):
    path = tmp_path / "corrupt.h5"
    for name in write_corrupt_file(plugin_dirs, path):
        proc = h5dump(plugin_dirs["ours"], path, f"/{name}")
        assert proc.returncode > 0, (name, proc.returncode)
