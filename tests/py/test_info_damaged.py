"""`h5rec info` on a damaged file says so, promptly, and names the object.

A file recorded by the real h5recd and closed is damaged the way a bad disk
or a stray write would: a few bytes of one piece of metadata (an object
header, the chunk index of a dataset, the superblock) are overwritten, at
an address h5py finds. Under SWMR read, HDF5 re-reads metadata that fails
its checksum 100 times by default, sleeping 1 ns doubling each time, so
`h5rec info` used to sit in those retries for more than a day. Now it
exits non-zero within a bounded number of attempts, saying that the file
is damaged and which object could not be read.

The recipe docs/operations.md gives for bounding an h5py SWMR reader the
same way is run here too, on the same damaged file.
"""
import json as jsonlib
import os
import re
import socket
import subprocess
import sys
import textwrap

import h5py
import pytest

from recorder_fixture import H5REC, T0, Recorder

STREAM = """
- name: weather
  match: { measurement: weather }
  group: "/{station}"
  layout: table
  channels: { temperature: { dtype: float32 }, wind: {} }
"""
# Far above the fraction of a second a bounded `h5rec info` takes; only
# there so that the old behaviour fails the test instead of hanging it.
TIMEOUT = 60
GARBAGE = bytes((i * 37 + 11) & 0xFF for i in range(24))


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A closed h5rec file: stations s1 and s2, 200 rows each."""
    work = tmp_path_factory.mktemp("recorded")
    rec = Recorder(work, STREAM, [{"protocol": "line", "transport": "tcp"}])
    try:
        rec.start()
        lines = "".join(f"weather,station=s{1 + i % 2} temperature={i * 0.5},wind={i} "
                        f"{T0 + i * 10**9}\n" for i in range(400))
        with socket.create_connection(("127.0.0.1", rec.port()), timeout=10) as sock:
            sock.sendall(lines.encode())
            sock.shutdown(socket.SHUT_WR)
            assert sock.recv(1) == b""
        rec.stop()
    finally:
        rec.kill()
    path = rec.the_file()
    with h5py.File(path, "r") as f:
        assert f["s1/time"].shape == (200,)
    return path


def object_address(path, name):
    with h5py.File(path, "r") as f:
        return h5py.h5o.get_info(f[name].id).addr


def first_signature(path, signature):
    """Offset of the first piece of metadata with this signature."""
    with open(path, "rb") as f:
        at = f.read().find(signature)
    assert at > 0, f"no {signature!r} in {path}"
    return at


def damaged_copy(original, tmp_path, offset):
    """A copy of the file with GARBAGE written at offset."""
    path = tmp_path / "damaged.h5"
    with open(original, "rb") as f:
        data = bytearray(f.read())
    data[offset:offset + len(GARBAGE)] = GARBAGE
    path.write_bytes(bytes(data))
    return str(path)


# What is damaged: (where, from the file), and what h5rec info must say.
CASES = {
    "dataset_header": (lambda p: object_address(p, "s2/temperature") + 8,
                       r"/s2/temperature: cannot read its object header"),
    "group_header": (lambda p: object_address(p, "s1") + 8,
                     r"/s1: cannot read its object header"),
    # the first extensible array (chunk index) header in the file; h5py does
    # not say whose it is, the message does
    "chunk_index": (lambda p: first_signature(p, b"EAHD") + 8,
                    r"/s[12]/\w+: cannot read its chunk index"),
    # superblock version 2/3: the base address, after the signature and versions
    "superblock": (lambda p: 12, r"cannot open it"),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("json", [False, True], ids=["text", "json"])
def test_info_says_damaged(recorded, tmp_path, case, json):
    where, said = CASES[case]
    path = damaged_copy(recorded, tmp_path, where(recorded))
    args = [H5REC, "info"] + (["--json"] if json else []) + [path]
    res = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT)
    assert res.returncode == 1, (res.stdout, res.stderr)
    assert f"h5rec info: {path}: the file is damaged: " in res.stderr, res.stderr
    assert "(incorrect metadata checksum after all read attempts)" in res.stderr, res.stderr
    assert re.search(said, res.stderr), res.stderr
    if json:
        # still one JSON object, saying why it ends where it does
        doc = jsonlib.loads(res.stdout)
        assert doc["file"] == path
        assert re.search(said, doc["damaged"]), doc
        assert "incorrect metadata checksum" in doc["damaged"], doc
        assert f"the file is damaged: {doc['damaged']}\n" in res.stderr, (doc, res.stderr)
        if case != "superblock":
            assert "raw_bytes" not in doc  # no totals for a file not read whole
            assert all(d["name"] for d in doc["datasets"])


def test_info_on_the_intact_file(recorded):
    res = subprocess.run([H5REC, "info", recorded], capture_output=True, text=True,
                         timeout=TIMEOUT)
    assert res.returncode == 0, res.stderr
    assert "/s2/temperature" in res.stdout and "damaged" not in res.stderr


# The recipe of docs/operations.md ("Reading live files"), word for word.
RECIPE = textwrap.dedent('''
    import ctypes
    import h5py

    def open_swmr(path, attempts=4):
        """h5py.File(path, "r", swmr=True), with metadata read at most
        `attempts` times: h5py has no option for it, so set it with HDF5's
        own H5Pset_metadata_read_attempts on the library h5py uses."""
        lib = next(line.split()[-1] for line in open("/proc/self/maps")
                   if "/libhdf5" in line and "_hl" not in line)
        hdf5 = ctypes.CDLL(lib)
        fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
        fapl.set_libver_bounds(h5py.h5f.LIBVER_LATEST, h5py.h5f.LIBVER_LATEST)
        if hdf5.H5Pset_metadata_read_attempts(ctypes.c_int64(fapl.id), attempts) < 0:
            raise OSError("H5Pset_metadata_read_attempts failed")
        flags = h5py.h5f.ACC_RDONLY | h5py.h5f.ACC_SWMR_READ
        return h5py.File(h5py.h5f.open(path.encode(), flags, fapl=fapl))
''')


def run_recipe(path, read):
    script = RECIPE + textwrap.dedent(f'''
        import sys
        try:
            with open_swmr({path!r}) as f:
                print("read", {read})
        except (OSError, RuntimeError, KeyError) as e:
            print("failed:", e)
            sys.exit(3)
    ''')
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=TIMEOUT)


def test_documented_h5py_recipe_is_bounded(recorded, tmp_path):
    res = run_recipe(recorded, 'f["s2/temperature"][:3].tolist()')
    assert res.returncode == 0 and "read [0.5, 1.5, 2.5]" in res.stdout, res.stdout + res.stderr
    offset = CASES["dataset_header"][0](recorded)
    res = run_recipe(damaged_copy(recorded, tmp_path, offset), 'f["s2/temperature"][:3]')
    assert res.returncode == 3, res.stdout + res.stderr
    assert "checksum" in res.stdout, res.stdout


def test_recipe_is_in_the_docs():
    docs = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "docs", "operations.md")
    with open(docs) as f:
        text = f.read()
    assert RECIPE.strip() in text
