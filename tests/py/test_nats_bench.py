"""Smoke run of the NATS benchmark (tests/bench/nats_bench.py) at a tiny
size: it must run end to end (it starts and stops its own nats-server, and
exits non-zero when the files do not hold every frame and line once) and
print both tables with every row, and the SUMMARY lines tests/bench/run
gathers. Speed itself is not asserted: CI machines are too noisy."""
import os
import re
import shutil
import subprocess
import sys

import pytest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench", "nats_bench.py")
BUILD_DIR = os.environ.get("H5REC_BUILD_DIR", "")
NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"

pytestmark = pytest.mark.skipif(not os.access(NATS_SERVER, os.X_OK),
                                reason="nats-server is not installed (.ci/packages)")

ROWS = ["(a) direct TCP into one h5recd", "(b) JetStream into one h5recd",
        "(c) JetStream into two h5recd", "broker alone: fetch + ack"]


def test_benchmark_prints_both_tables(tmp_path):
    frames, lines = 12, 15000
    proc = subprocess.run([sys.executable, SCRIPT, "--build", BUILD_DIR, "--dir", str(tmp_path),
                           "--frames", str(frames), "--lines", str(lines), "--repeat", "1"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    tables = re.split(r"^(?=400 kB frames:|5000-line batches:)", out, flags=re.M)[1:]
    assert len(tables) == 2, out
    for table, total in zip(tables, (frames, lines)):
        for row in ROWS:
            m = re.search(r"^\s*" + re.escape(row) + r"\s+(.*)$", table, re.M)
            assert m, (row, table)
            cells = m.group(1).split()
            seconds, mb_s, units_s, ratio = (float(c) for c in cells[:4])
            assert seconds > 0 and mb_s > 0 and units_s > 0 and ratio > 0, (row, cells)
            if row.startswith("("):
                # rows each recorder stored: all of them, between the recorders
                assert sum(int(n) for n in cells[-1].split("/")) == total, (row, cells)
                assert len(cells[-1].split("/")) == (2 if row.startswith("(c)") else 1)
    summary = [line.split("|") for line in out.splitlines() if line.startswith("SUMMARY|")]
    assert len(summary) == 8, out
    assert all(s[1] == "nats" and float(s[3]) > 0 and float(s[5]) > 0 for s in summary)
    # each run's directory (schemas, logs, files) is removed once checked
    assert not [n for n in os.listdir(tmp_path) if n.startswith(("tcp-", "nats1-", "nats2-"))]
