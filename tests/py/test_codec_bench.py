"""Smoke run of the codec benchmark (tests/bench/codec_bench.sh): it must run
end to end on a small size, verify every encoding through HDF5 (it exits
non-zero otherwise) and print a row per codec and tool with sane figures,
then the codecs through the whole engine.
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
    env = dict(os.environ, CODEC_ENGINE_MIB="8", CODEC_ENGINE_REPS="1")
    proc = subprocess.run(["sh", SCRIPT, BUILD_DIR, "--mib", "1", "--reps", "1",
                           "--chunk-kib", "128", "--dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    tables, current = {}, None
    for line in proc.stdout.splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) == 4 and cells[1] == "stored/raw":
            current = tables.setdefault(cells[0], {})
        elif current is not None and len(cells) == 4:
            current[cells[0]] = [float(c) for c in cells[1:]]
    engine = tables.pop("codec")  # the whole-engine table (codec_engine.py)
    assert sorted(engine) == ["lz4", "lz4 -1 (CLI)", "shuffle+deflate 1+fletcher32",
                              "shuffle+lz4+fletcher32", "szip nn 32+fletcher32"]
    assert all(0 < r < 1.3 and s > 0 for r, s, _ in engine.values()), engine
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
