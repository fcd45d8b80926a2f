"""Smoke run of the LZ4 benchmark (tests/bench/lz4_bench.sh): it must run
end to end on a small size and print one row per data set with sane
figures. Speed itself is not asserted: CI machines are too noisy."""
import os
import re
import shutil
import subprocess

import pytest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench", "lz4_bench.sh")
BUILD_DIR = os.environ.get("H5REC_BUILD_DIR", "")


@pytest.mark.skipif(shutil.which("lz4") is None, reason="lz4 CLI not installed")
def test_benchmark_prints_a_row_per_data_set(tmp_path):
    proc = subprocess.run(["sh", SCRIPT, BUILD_DIR, "--mib", "2", "--reps", "3",
                           "--chunk-kib", "256", "--dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "libh5rec_lz4.so" in proc.stdout
    rows = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"(sine\+noise float32|random float32|ramp int32)\s+\|(.*)", line)
        if m:
            rows[m.group(1)] = [float(x) for x in m.group(2).replace("|", " ").split()]
    assert sorted(rows) == ["ramp int32", "random float32", "sine+noise float32"]
    for name, figures in rows.items():
        assert len(figures) == 10 and all(f > 0 for f in figures), (name, figures)
    # compression ratios: ours and lz4's agree roughly; only the sine compresses
    assert rows["sine+noise float32"][0] > 1.1
    assert abs(rows["sine+noise float32"][0] - rows["sine+noise float32"][1]) < 0.1
    assert rows["random float32"][0] < 1.01
    assert os.listdir(tmp_path) == []  # scratch files removed
