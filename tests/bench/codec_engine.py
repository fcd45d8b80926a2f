#!/usr/bin/python3
"""Channel codecs through the whole storage engine: the stream layout of
tests/tools/bench_engine (float32 sine + noise as a 14-bit digitizer records
it, chunks of 256 Ki samples) appended frame by frame, encoded by the
engine's compression pool (one worker per CPU) and written with HDF5 into
a file, until the file is closed; against `lz4 -1` on the same bytes in the
same run (one thread, to a file). Medians of repetitions; run by
tests/bench/codec_bench.sh after the single-thread codec table. Not run by
ctest.

  /usr/bin/python3 tests/bench/codec_engine.py [--build DIR] [--reps N] [--mib N]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

CODECS = [
    ("lz4", "compression: lz4"),
    ("shuffle+lz4+fletcher32", "compression: lz4, shuffle: true, fletcher32: true"),
    ("shuffle+deflate 1+fletcher32",
     "compression: deflate, level: 1, shuffle: true, fletcher32: true"),
    ("szip nn 32+fletcher32", "compression: szip, fletcher32: true"),
]


def engine_run(tool, where, mib, options):
    env = dict(os.environ, BENCH_CODEC=options)
    res = subprocess.run([tool, "codec", where, str(mib)], capture_output=True, text=True,
                         env=env, timeout=1200)
    if res.returncode:
        sys.exit(f"bench_engine codec ({options}): {res.stderr}")
    line = [l for l in res.stdout.splitlines() if l.startswith("codec ")][0]
    rate = float(dict(kv.split("=", 1) for kv in line.split()[1:])["rate"])
    # the file as closed, metadata included, against the raw bytes
    stored = sum(os.path.getsize(os.path.join(where, f)) for f in os.listdir(where)
                 if f.endswith(".h5"))
    return rate, stored / os.path.getsize(os.path.join(where, "raw.f32"))


def lz4_run(raw, out):
    t0 = time.perf_counter()
    with open(out, "wb") as sink:
        subprocess.run(["lz4", "-1", "-c", raw], stdout=sink, check=True)
    return os.path.getsize(raw) / (time.perf_counter() - t0), os.path.getsize(out) / os.path.getsize(raw)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(here, "..", "..", "build"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None)
    args = ap.parse_args()
    tool = os.path.join(os.environ.get("H5REC_TOOLS_DIR", os.path.join(args.build, "tests", "tools")),
                        "bench_engine")
    where = tempfile.mkdtemp(prefix="codec-engine-", dir=args.dir)
    rates = {name: [] for name, _ in CODECS}
    ratios, base, base_ratio = {}, [], 0.0
    try:
        for _ in range(args.reps):
            for name, options in CODECS:
                rate, ratios[name] = engine_run(tool, where, args.mib, options)
                rates[name].append(rate)
                raw = os.path.join(where, "raw.f32")
                if name == CODECS[0][0]:  # the same bytes every time
                    rate, base_ratio = lz4_run(raw, os.path.join(where, "raw.f32.lz4"))
                    base.append(rate)
                for f in os.listdir(where):
                    os.unlink(os.path.join(where, f))
    finally:
        shutil.rmtree(where, ignore_errors=True)
    b = statistics.median(base)
    print(f"through the engine: {args.mib} MiB of 14-bit float32 sine+noise, stream layout, "
          f"{os.cpu_count()} workers, medians of {args.reps}, load {os.getloadavg()[0]:.2f}")
    print(f"{'codec':30} | stored/raw |   MB/s | x lz4 -1")
    for name, _ in CODECS:
        e = statistics.median(rates[name])
        print(f"{name:30} | {ratios[name]:10.3f} | {e / 1e6:6.0f} | {e / b:8.2f}")
        print(f"SUMMARY|codec|engine, {name}, sine+noise float32 (stored/raw {ratios[name]:.3f}), "
              f"MB/s|{e / 1e6:.0f}|lz4 -1 CLI|{b / 1e6:.0f}|{e / b:.2f}|-|-")
    print(f"{'lz4 -1 (CLI)':30} | {base_ratio:10.3f} | {b / 1e6:6.0f} | {1:8.2f}")


if __name__ == "__main__":
    main()
