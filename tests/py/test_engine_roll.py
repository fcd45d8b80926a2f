"""Storage engine file rolling and naming (SPEC §4.5): UTC intervals, size,
explicit requests, never overwriting, and the family driver.
"""
import os
import re

import h5py
import numpy as np

from engine_util import SEC, T0, files, run_gen, write_schema

TABLE = """\
streams:
  - name: weather
    match: { measurement: weather }
    group: "/{station}"
    layout: table
    defaults: { chunk: 4 }
    channels:
      temperature: { dtype: float32 }
      pressure: { dtype: float64 }
"""

STREAM = """\
streams:
  - name: adc
    match: { key: "{board}/{channel}" }
    group: "/{board}"
    layout: stream
    channels:
      a0: { dtype: float32, chunk: 65536, dt: 1e-6 }
"""


def rows_by_file(paths):
    out = []
    for p in paths:
        with h5py.File(p, "r") as f:
            t = f["15/time"][:]
            temp = f["15/temperature"][:]
            out.append((p, t, temp, dict(f.attrs), dict(f["15/temperature"].attrs)))
    return out


def test_roll_at_utc_hours_and_on_request_never_overwrites(tmp_path):
    schema, out = write_schema(tmp_path, TABLE, name="wx",
                               output='file: "{name}-{date}-{time}-{seq}.h5"\n'
                                      "roll: { every: 1h }\n")
    run_gen(schema, "roll")
    paths = files(out)
    # rows every 20 min from 03:04:05 for 15 rows, explicit roll after row 7:
    # 03h: 0-2, 04h: 3-5, 05h: 6-7 | 8, 06h: 9-11, 07h: 12-14
    groups = [[0, 1, 2], [3, 4, 5], [6, 7], [8], [9, 10, 11], [12, 13, 14]]
    assert len(paths) == len(groups), paths
    content = rows_by_file(paths)
    content.sort(key=lambda c: c[1][0])
    for (path, t, temp, root, attrs), rows in zip(content, groups):
        np.testing.assert_array_equal(t, T0 + np.array(rows) * 1200 * SEC)
        expected = np.where(np.array(rows) % 5 == 4, np.nan, np.array(rows) * 0.5)
        np.testing.assert_array_equal(temp, expected.astype(np.float32))
        valid = [r for r in rows if r % 5 != 4]
        assert attrs["start_time"] == T0 + valid[0] * 1200 * SEC
        assert attrs["end_time"] == T0 + valid[-1] * 1200 * SEC
        # the name says when the file was started, in UTC
        m = re.search(r"wx-(\d{8})-(\d{6})-(\d{4})\.h5$", path)
        assert m and m.group(1) == "20260102", path
    seqs = sorted(int(re.search(r"-(\d{4})\.h5$", p).group(1)) for p in paths)
    assert seqs == list(range(len(paths)))
    # a second run into the same directory takes new names
    before = {p: os.path.getmtime(p) for p in paths}
    run_gen(schema, "roll")
    after = files(out)
    assert len(after) == 2 * len(paths)
    for p, mtime in before.items():
        assert os.path.getmtime(p) == mtime


def test_roll_by_size(tmp_path):
    schema, out = write_schema(tmp_path, STREAM, name="dig",
                               output="roll: { size: 3MiB }\n")
    stats = run_gen(schema, "bulk", 16)
    paths = files(out)
    assert len(paths) >= 4, paths
    total = 0
    for p in paths:
        with h5py.File(p, "r") as f:
            n = f["b1/a0"].shape[0]
            assert f["b1/a0_frame_start"][0] == 0
            total += n
        # a file is closed once it reaches the size, so it cannot grow much past it
        assert os.path.getsize(p) < 3 * 2**20 + 2 * 2**20
    assert total == int(stats["samples_written"]) == 16 * 2**20 // 4


def test_family_driver_spans_members(tmp_path):
    schema, out = write_schema(tmp_path, STREAM, name="fam",
                               output='file: "{name}-{seq}-{member}.h5"\n'
                                      "driver: family\nmember_size: 1MiB\nswmr: false\n")
    stats = run_gen(schema, "bulk", 5)
    members = files(out, "fam-0000-*.h5")
    assert len(members) >= 5, members
    assert stats["file"].endswith("fam-0000-%d.h5")
    with h5py.File(os.path.join(out, "fam-0000-%d.h5"), "r", driver="family",
                   memb_size=0) as f:
        data = f["b1/a0"][:]
        n = 5 * 2**20 // 4
        assert data.shape == (n,)
        k, j = np.divmod(np.arange(n), 1 << 18)
        np.testing.assert_array_equal(data, ((k * (1 << 18) + j) % 1000).astype(np.float32))
        assert f.attrs["schema_name"] == "fam"


def test_family_never_writes_over_a_stale_member(tmp_path):
    """A later member of an earlier family file left behind (its member 0
    removed) used to be hit once the file grew into it: HDF5 failed the
    write (EEXIST) and the file ended, losing its data. Any member there
    makes the {seq} taken: the file goes to the next one, and says so."""
    schema, out = write_schema(tmp_path, STREAM, name="fam",
                               output='file: "{name}-{seq}-{member}.h5"\n'
                                      "driver: family\nmember_size: 1MiB\nswmr: false\n")
    os.makedirs(out)
    stale = os.path.join(out, "fam-0000-2.h5")
    with open(stale, "wb") as f:
        f.write(b"stale" * 200)
    stats = run_gen(schema, "bulk", 3)
    assert stats["file"].endswith("fam-0001-%d.h5"), stats
    assert "fam-0000-2.h5 of an earlier file is there" in stats.get("last_error", ""), stats
    with open(stale, "rb") as f:
        assert f.read() == b"stale" * 200
    assert files(out, "fam-0000-*.h5") == [stale]
    with h5py.File(os.path.join(out, "fam-0001-%d.h5"), "r", driver="family",
                   memb_size=0) as f:
        assert f["b1/a0"].shape == (3 * 2**20 // 4,)
