"""Smoke run of the codec benchmark (tests/bench/codec_bench.sh): it must run
end to end on a small size, verify every encoding through HDF5 (it exits
non-zero otherwise) and print a row per codec and tool with sane figures.
Speed itself is not asserted: CI machines are too noisy."""
import os
import re
import shutil
import subprocess

import pytest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench",
                      "codec_bench.sh")
BUILD_DIR = os.environ.get("H5REC_BUILD_DIR", "")
SETS = ["accelerator float32", "digitizer int16", "detector int16"]


@pytest.mark.skipif(shutil.which("lz4") is None, reason="lz4 CLI not installed")
def test_benchmark_prints_a_table_per_data_set(tmp_path):
    proc = subprocess.run(["sh", SCRIPT, BUILD_DIR, "--mib", "1", "--reps", "1",
                           "--chunk-kib", "128", "--dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    tables, current = {}, None
    for line in proc.stdout.splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) == 4 and cells[1] == "stored/raw":
            current = tables.setdefault(cells[0], {})
        elif current is not None and len(cells) == 4:
            current[cells[0]] = [float(c) for c in cells[1:]]
    assert sorted(tables) == sorted(SETS)
    for name, rows in tables.items():
        for codec in ["lz4", "shuffle+lz4", "deflate 1", "shuffle+deflate 1", "szip nn 32",
                      "szip nn 32+fletcher32", "lz4 -1 (CLI)", "gzip -1 (CLI)"]:
            ratio, speed, relative = rows[codec]
            assert 0 < ratio < 1.3 and speed > 0 and relative > 0, (name, codec)
        # the engine's lz4 and the lz4 tool code the same bytes about alike
        assert abs(rows["lz4"][0] - rows["lz4 -1 (CLI)"][0]) < 0.05, name
        # szip with prediction shrinks every one of these noisy signals
        assert rows["szip nn 32"][0] < 0.7, name
        # the checksum costs 4 bytes a chunk (below the printed precision)
        assert 0 <= rows["szip nn 32+fletcher32"][0] - rows["szip nn 32"][0] < 0.001, name
    assert re.search(r"^commit: \S+", proc.stdout, re.M)
    assert os.listdir(tmp_path) == []  # scratch files removed
