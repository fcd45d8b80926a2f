#!/usr/bin/python3
"""Storage-engine benchmarks (issue 4), each against a baseline measured in
the same run; medians of repetitions. Not run by ctest.

  /usr/bin/python3 tests/bench/engine_bench.py [--build DIR] [--reps N]
                                               [--records-mib N] [--lz4-mib N]

(a) records layout, float32 in 400 kB waveforms, uncompressed, vs write()
    of the same bytes in 400 kB pieces (+ one fsync) on the same filesystem;
    goal >= 80 %.
(b) LZ4 (stream layout, sine + noise float32) vs single-threaded `lz4 -1`
    on the same bytes; goal >= 1.5x. Both run on tmpfs (/dev/shm) so that
    the disk does not hide the compression rate; --lz4-dir changes that.
(c) table layout, 4 float32 channels, one append per record; goal >= 2e6
    samples/s and >= 100x h5py's resize-per-record append.
(d) peak RSS of (a) with limits.max_buffer = 64 MiB stays within it.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

H5PY_APPEND = r"""
import h5py, numpy as np, sys, time
path, n = sys.argv[1], int(sys.argv[2])
with h5py.File(path, "w", libver="latest") as f:
    ds = [f.create_dataset(c, (0,), maxshape=(None,), chunks=(4096,), dtype="f4")
          for c in "abcd"]
    t0 = time.perf_counter()
    for i in range(n):
        for k, d in enumerate(ds):
            d.resize((i + 1,))
            d[i] = i + k
    secs = time.perf_counter() - t0
print(f"h5py samples={4 * n} seconds={secs:.4f}")
"""


def parse(line):
    fields = dict(kv.split("=", 1) for kv in line.split()[1:])
    return {k: float(v) for k, v in fields.items()}


def run_bench(tool, *args):
    res = subprocess.run([tool] + [str(a) for a in args], capture_output=True, text=True,
                         timeout=1200)
    if res.returncode:
        sys.exit(f"{tool} {args}: {res.stderr}")
    return [parse(l) for l in res.stdout.splitlines() if "=" in l and not l.startswith("lz4_ratio")][0], res.stdout


def clean(d):
    """Remove the run's files and let the kernel finish writing back, so
    that writeback threads do not steal CPU from the next measurement."""
    for name in os.listdir(d):
        os.unlink(os.path.join(d, name))
    os.sync()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(here, "..", "..", "build"))
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--records-mib", type=int, default=1024)
    ap.add_argument("--lz4-mib", type=int, default=512)
    ap.add_argument("--table-records", type=int, default=5_000_000)
    ap.add_argument("--h5py-records", type=int, default=20_000)
    ap.add_argument("--lz4-dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None)
    args = ap.parse_args()
    tool = os.path.join(args.build, "tests", "tools", "bench_engine")
    disk_dir = tempfile.mkdtemp(prefix="engine-bench-", dir=args.build)
    lz4_dir = tempfile.mkdtemp(prefix="engine-bench-", dir=args.lz4_dir)
    rows = []
    try:
        # (b)
        eng, base, stored = [], [], []
        for _ in range(args.reps):
            r, out = run_bench(tool, "lz4", lz4_dir, args.lz4_mib)
            eng.append(r["rate"])
            for l in out.splitlines():
                if l.startswith("lz4_ratio"):
                    kv = dict(x.split("=") for x in l.split()[1:])
                    stored.append(int(kv["stored"]) / int(kv["raw"]))
            raw = os.path.join(lz4_dir, "raw.f32")
            t0 = time.perf_counter()
            with open(os.devnull, "wb") as null:
                subprocess.run(["lz4", "-1", "-c", raw], stdout=null, check=True)
            base.append(os.path.getsize(raw) / (time.perf_counter() - t0))
            clean(lz4_dir)
        b_eng, b_base = statistics.median(eng), statistics.median(base)
        rows.append((f"(b) LZ4 sine+noise, MB/s (stored/raw {statistics.median(stored):.3f})",
                     b_eng / 1e6, b_base / 1e6, b_eng / b_base, ">= 1.5", b_eng / b_base >= 1.5))
        # (a) + (d)
        write_rates, rec_rates, rss = [], [], []
        for _ in range(args.reps):
            r, _ = run_bench(tool, "write", disk_dir, args.records_mib)
            write_rates.append(r["rate"])
            clean(disk_dir)
            r, _ = run_bench(tool, "records", disk_dir, args.records_mib, 64)
            rec_rates.append(r["rate"])
            rss.append(r["maxrss_kib"] / 1024)
            clean(disk_dir)
        a_eng, a_base = statistics.median(rec_rates), statistics.median(write_rates)
        rows.append(("(a) records 400 kB float32, MB/s", a_eng / 1e6, a_base / 1e6,
                     a_eng / a_base, ">= 0.80", a_eng / a_base >= 0.8))
        # (c)
        eng, base = [], []
        for _ in range(args.reps):
            r, _ = run_bench(tool, "table", disk_dir, args.table_records)
            eng.append(r["samples"] / r["seconds"])
            clean(disk_dir)
            res = subprocess.run([sys.executable, "-c", H5PY_APPEND,
                                  os.path.join(disk_dir, "h5py.h5"), str(args.h5py_records)],
                                 capture_output=True, text=True, check=True, timeout=1200)
            p = parse(res.stdout.strip())
            base.append(p["samples"] / p["seconds"])
            clean(disk_dir)
        c_eng, c_base = statistics.median(eng), statistics.median(base)
        rows.append(("(c) table 4 x float32, 1 record/append, samples/s", c_eng, c_base,
                     c_eng / c_base, ">= 100 and >= 2e6", c_eng / c_base >= 100 and c_eng >= 2e6))
        d_rss = statistics.median(rss)
        rows.append(("(d) peak RSS of (a), MiB, max_buffer 64 MiB", d_rss, 64.0, d_rss / 64,
                     "<= 1.0", d_rss <= 64))
    finally:
        shutil.rmtree(disk_dir, ignore_errors=True)
        shutil.rmtree(lz4_dir, ignore_errors=True)

    print(f"engine benchmarks, medians of {args.reps} runs, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.2f}")
    print(f"{'benchmark':58} {'engine':>12} {'baseline':>12} {'ratio':>8}  goal")
    for name, e, b, ratio, goal, met in rows:
        print(f"{name:58} {e:12.1f} {b:12.1f} {ratio:8.2f}  {goal} {'met' if met else 'NOT met'}")
    # One line per figure for tests/bench/run's combined table.
    baselines = {"(a)": "write() of the same bytes + fsync", "(b)": "lz4 -1, one thread",
                 "(c)": "h5py resize per record", "(d)": "limits.max_buffer"}
    for name, e, b, ratio, goal, met in rows:
        print(f"SUMMARY|engine|{name}|{e:.1f}|{baselines[name[:3]]}|{b:.1f}|{ratio:.2f}|{goal}|"
              f"{'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
