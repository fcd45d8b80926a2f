#!/usr/bin/python3
"""Daemon ingest benchmark: h5recd against a plain TCP-to-file sink.

The same pre-encoded byte streams are sent over loopback TCP by the real
client (`h5rec send --raw`) into

  * tcp_sink, which writes every byte to a file on the same filesystem and
    fsyncs it (the baseline: what the machine can do with these bytes), and
  * h5recd, recording them into HDF5 (records layout, uncompressed and LZ4;
    table layout for line protocol).

Pre-compressed (issue 19): the same events, encoded by the simulator with
the LZ4 channel's pipeline (`h5rec simulate --precompress`, which asks a
recorder with that schema), are sent to h5recd, which writes the chunks as
they are, and to tcp_sink (the raw same-bytes baseline). Those rows are
reported in uncompressed-equivalent MB/s (the raw waveform stream's size
over the time) and the receiver's CPU per byte stored.

The sender's side of it (--encode-threads, default 1,2), timed from the
start of the sender until the recorder has exited, with the sender's CPU
time: the same events made and encoded by `h5rec simulate accelerator
--precompress --encode-threads N` straight into h5recd (a sender that
makes its data as it sends it: the simulator's waveforms take one core
of their own), and `h5rec send --precompress --encode-threads N` of a file
of as many float32 samples (sine + noise, 14-bit) into a stream channel
with shuffle + LZ4 + Fletcher-32, and with shuffle + deflate level 1,
chunks of 100,000 samples, 3 per frame (the encoding is then the
sender's work).

A run is timed from the start of the send until the receiver has exited:
for h5recd that includes draining, the last chunk writes, the final flush
and fsync, and closing the file, so every byte counted is durable. Each
case runs --repeat times, interleaved with its baseline, and the table shows
medians and the ratio to the baseline's median from the same run.

The receiver's CPU time (user + system, from wait4, less what it had used
when the send began: h5recd's start-up, about 30 ms of loading libraries
and HDF5, is no cost per byte) is shown too, in nanoseconds per byte sent:
the wall-clock ratio depends on how the two cores are shared with the
sender and with whatever else runs, while the receiver's CPU cost per byte
is what changes to the recorder move.

usage: tests/bench/daemon_bench.py [--build DIR] [--dir DIR] [--events N]
                                   [--lines N] [--repeat N] [--encode-threads N,M]
"""
import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import h5py  # noqa: F401  (also checks the interpreter is Debian's python3)

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_so_far(pid):
    """CPU seconds the running process PID has used so far, all its threads
    (their run time in ns from /proc, not the 10 ms ticks of /proc/PID/stat)."""
    total = 0
    task = "/proc/%d/task" % pid
    for tid in os.listdir(task):
        try:
            with open(os.path.join(task, tid, "schedstat")) as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:  # a thread that ended meanwhile
            pass
    return total / 1e9


def wait_cpu(proc, since=0.0):
    """Reap proc; returns (exit code, its user + system CPU seconds less
    SINCE: a receiver's CPU from the start of the send, not its start-up)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_utime + usage.ru_stime - since


def wait_port(port, proc, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("receiver exited early")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("receiver did not listen on %d" % port)


class Bench:
    def __init__(self, args):
        self.args = args
        self.h5rec = os.path.join(args.build, "src", "h5rec")
        self.h5recd = os.path.join(args.build, "src", "h5recd")
        self.sink = os.path.join(args.build, "tests", "tools", "tcp_sink")
        self.dir = args.dir
        for exe in (self.h5rec, self.h5recd, self.sink):
            if not os.access(exe, os.X_OK):
                sys.exit("missing %s: build first (cmake --build %s)" % (exe, args.build))

    def start_sink(self, out, writeback=0):
        port = free_port()
        proc = subprocess.Popen([self.sink, str(port), out] + ([str(writeback)] if writeback
                                                               else []),
                                stdout=subprocess.PIPE, text=True)
        proc.stdout.readline()  # "listening"
        return port, proc

    def generate(self, setup, count, path, extra=()):
        """Let the real simulator produce the stream; keep the bytes it sent."""
        port, sink = self.start_sink(os.devnull)
        subprocess.run([self.h5rec, "simulate", setup, "--to", "tcp:127.0.0.1:%d" % port,
                        "--count", str(count), "--rate", "0", "--no-ack", "--t0",
                        "1700000000000000000", "--tee", path, *extra],
                       check=True, stdout=subprocess.DEVNULL)
        sink.wait()
        return os.path.getsize(path)

    def generate_precompressed(self, count, path):
        """The accelerator stream as `simulate --precompress` sends it to a
        recorder of the LZ4 records schema (which answers its DESCRIBE)."""
        port = free_port()
        work = tempfile.mkdtemp(dir=self.dir)
        schema = os.path.join(work, "bench.yaml")
        with open(schema, "w") as f:
            f.write(RECORDS.replace("COMPRESSION", "lz4").format(
                port=port, out=os.path.join(work, "out"),
                control=os.path.join(work, "control.sock")))
        proc = subprocess.Popen([self.h5recd, "-c", schema, "-l", "warning"])
        wait_port(port, proc)
        subprocess.run([self.h5rec, "simulate", "accelerator", "--to",
                        "tcp:127.0.0.1:%d" % port, "--count", str(count), "--rate", "0",
                        "--no-ack", "--t0", "1700000000000000000", "--tee", path,
                        "--precompress"], check=True, stdout=subprocess.DEVNULL)
        proc.send_signal(signal.SIGTERM)
        proc.wait()
        subprocess.run(["rm", "-rf", work], check=True)
        return os.path.getsize(path)

    def send(self, port, stream):
        subprocess.run([self.h5rec, "send", "--raw", "--no-ack", "--to",
                        "tcp:127.0.0.1:%d" % port, stream], check=True,
                       stdout=subprocess.DEVNULL)

    def run_sink(self, stream, writeback=0):
        out = os.path.join(self.dir, "sink.bin")
        port, sink = self.start_sink(out, writeback)
        os.sync()  # the previous run's writeback must not land in this one
        started = cpu_so_far(sink.pid)
        t0 = time.monotonic()
        self.send(port, stream)
        _, cpu = wait_cpu(sink, started)
        elapsed = time.monotonic() - t0
        assert os.path.getsize(out) == os.path.getsize(stream)
        os.unlink(out)
        return elapsed, cpu

    def run_daemon(self, schema_text, stream):
        port = free_port()
        work = tempfile.mkdtemp(dir=self.dir)
        schema = os.path.join(work, "bench.yaml")
        with open(schema, "w") as f:
            f.write(schema_text.format(port=port, out=os.path.join(work, "out"),
                                       control=os.path.join(work, "control.sock")))
        log = open(os.path.join(work, "h5recd.log"), "w")
        proc = subprocess.Popen([self.h5recd, "-c", schema, "-l", "warning"], stderr=log)
        wait_port(port, proc)
        os.sync()  # the previous run's writeback must not land in this one
        started = cpu_so_far(proc.pid)
        t0 = time.monotonic()
        self.send(port, stream)
        proc.send_signal(signal.SIGTERM)
        rc, cpu = wait_cpu(proc, started)
        elapsed = time.monotonic() - t0
        log.close()
        if rc != 0:
            sys.exit("h5recd failed, see %s" % log.name)
        files = []
        for root, _, names in os.walk(os.path.join(work, "out")):
            files += [os.path.join(root, n) for n in names]
        size = sum(os.path.getsize(f) for f in files)
        rows = self.count_rows(files)
        subprocess.run(["rm", "-rf", work], check=True)
        return elapsed, cpu, size, rows

    def samples_file(self, count):
        """COUNT float32 samples of sine + noise at 14 bits, for send."""
        import numpy as np
        path = os.path.join(self.dir, "samples.f32")
        t = np.arange(count, dtype=np.float64)
        x = np.sin(t / 3000.0) * 0.8 + np.random.default_rng(1).normal(0, 0.002, count)
        (np.round(x * 8192) / 8192).astype("<f4").tofile(path)
        return path

    def run_sender(self, threads, how, samples=None):
        """HOW ("simulate", "send lz4" or "send deflate") --precompress on THREADS encoder
        threads into h5recd: (wall s, sender CPU s, rows or samples stored)."""
        port = free_port()
        work = tempfile.mkdtemp(dir=self.dir)
        schema = os.path.join(work, "bench.yaml")
        with open(schema, "w") as f:
            codec = "deflate, level: 1" if how == "send deflate" else "lz4"
            f.write((RECORDS if how == "simulate" else STREAM).replace("COMPRESSION", codec)
                    .format(port=port, out=os.path.join(work, "out"),
                            control=os.path.join(work, "control.sock")))
        log = open(os.path.join(work, "h5recd.log"), "w")
        proc = subprocess.Popen([self.h5recd, "-c", schema, "-l", "warning"], stderr=log)
        wait_port(port, proc)
        os.sync()
        to = "tcp:127.0.0.1:%d" % port
        if how == "simulate":
            args = ["simulate", "accelerator", "--to", to, "--count", str(self.args.events),
                    "--rate", "0"]
        else:
            args = ["send", "--to", to, "-k", "adc/x", "-d", "float32", "-n", "300000",
                    "--dt", "1e-6", samples]
        started = cpu_so_far(proc.pid)
        t0 = time.monotonic()
        sender = subprocess.Popen([self.h5rec, *args, "--no-ack", "--t0",
                                   "1700000000000000000", "--precompress",
                                   "--encode-threads", str(threads)],
                                  stdout=subprocess.DEVNULL)
        rc, sim_cpu = wait_cpu(sender)
        sent = time.monotonic() - t0
        if rc != 0:
            sys.exit("h5rec %s --encode-threads %d failed" % (how, threads))
        proc.send_signal(signal.SIGTERM)
        rc, rec_cpu = wait_cpu(proc, started)
        elapsed = time.monotonic() - t0
        log.close()
        if rc != 0:
            sys.exit("h5recd failed, see %s" % log.name)
        files = []
        for root, _, names in os.walk(os.path.join(work, "out")):
            files += [os.path.join(root, n) for n in names]
        rows = self.count_rows(files, "/time" if how == "simulate" else "/x")
        subprocess.run(["rm", "-rf", work], check=True)
        return elapsed, sim_cpu, rows, sent, rec_cpu

    @staticmethod
    def count_rows(files, suffix="/time"):
        env = dict(os.environ, HDF5_PLUGIN_PATH="/usr/lib/x86_64-linux-gnu/hdf5/serial/plugins")
        code = ("import h5py,sys\n"
                "n=0\n"
                "for p in sys.argv[2:]:\n"
                "  f=h5py.File(p,'r')\n"
                "  def v(name,o):\n"
                "    global n\n"
                "    if isinstance(o,h5py.Dataset) and name.endswith(sys.argv[1]): n+=o.shape[0]\n"
                "  f.visititems(v)\n"
                "print(n)\n")
        out = subprocess.run([sys.executable, "-c", code, suffix, *files], env=env, check=True,
                             capture_output=True, text=True)
        return int(out.stdout)


# h5recd starts the writeback of a file after every 32 MiB of chunks
# (H5W_WRITEBACK_BYTES): tcp_sink can do the same, for a second baseline.
WRITEBACK = 32 << 20

# What every benchmark schema starts with ({out}, {control}, {port} filled
# in per run; PROTOCOL by each schema).
HEADER = """name: bench
output: {{ directory: "{out}", file: "bench-{{seq}}.h5", flush: 1s }}
control: {{ socket: "{control}" }}
listen: [ {{ protocol: PROTOCOL, transport: tcp, address: "127.0.0.1:{port}" }} ]
limits: {{ max_buffer: 512MiB }}
"""

RECORDS = HEADER.replace("PROTOCOL", "frame") + """streams:
  - name: dust
    match: {{ key: "dust/{{channel}}" }}
    group: /dust
    layout: records
    samples: 100000
    dt: 2.0e-8
    event_fields: {{ mass: float32, velocity: float32 }}
    defaults: {{ dtype: float32, compression: COMPRESSION }}
    channels: {{ first_detector: {{}}, second_detector: {{}}, third_detector: {{}} }}
"""

STREAM = HEADER.replace("PROTOCOL", "frame") + """streams:
  - name: adc
    match: {{ key: "adc/{{channel}}" }}
    group: /adc
    layout: stream
    defaults: {{ dtype: float32, dt: 1.0e-6, compression: COMPRESSION, shuffle: true,
                 fletcher32: true, chunk: 100000 }}
    channels: {{ x: {{}} }}
"""

TABLE = HEADER.replace("PROTOCOL", "line") + """streams:
  - name: weather
    match: {{ measurement: weather }}
    group: "/{{station}}"
    layout: table
    defaults: {{ dtype: float32, compression: COMPRESSION }}
    channels: {{ temperature: {{}}, wind: {{}}, pressure: {{}}, humidity: {{}} }}
"""


SINK_WB = "pre: tcp_sink, raw stream, writeback every 32 MiB"


def print_precompressed(results, cpus, sink_raw, frame_bytes, pre_bytes):
    """Issue 19's row: the accelerator stream sent pre-compressed, compressed
    by the recorder and uncompressed, against tcp_sink, in uncompressed-
    equivalent MB/s (frame_bytes / time) and receiver CPU per stored byte."""
    med = statistics.median
    sink_pre = med(results["pre: tcp_sink, the pre-compressed bytes"])
    cases = [
        ("tcp_sink, raw stream (baseline)", sink_raw,
         med(cpus["frames: tcp_sink (baseline)"]), frame_bytes),
        ("tcp_sink, pre-compressed bytes", sink_pre,
         med(cpus["pre: tcp_sink, the pre-compressed bytes"]), pre_bytes),
        ("tcp_sink, raw, writeback / 32 MiB", med(results[SINK_WB]), med(cpus[SINK_WB]),
         frame_bytes),
        ("h5recd, uncompressed", med(results["frames: h5recd records, none"]),
         med(cpus["frames: h5recd records, none"]), med(results["size none"])),
        ("h5recd, lz4 by the recorder", med(results["frames: h5recd records, lz4"]),
         med(cpus["frames: h5recd records, lz4"]), med(results["size lz4"])),
        ("h5recd, lz4 pre-compressed", med(results["pre: h5recd records, lz4 pre-compressed"]),
         med(cpus["pre: h5recd records, lz4 pre-compressed"]), med(results["size pre"])),
    ]
    print("\npre-compressed frames (issue 19): %.1f MB of waveform frames, %.1f MB "
          "pre-compressed (%.2f)" % (frame_bytes / 1e6, pre_bytes / 1e6, pre_bytes / frame_bytes))
    print("%-34s %9s %16s %8s %16s" % ("case", "median s", "uncompr.-eq MB/s", "vs raw",
                                       "CPU ns/stored B"))
    for name, t, cpu, stored in cases:
        print("%-34s %9.3f %16.1f %7.2fx %16.2f" % (name, t, frame_bytes / 1e6 / t,
                                                   sink_raw / t, cpu / stored * 1e9))
    t_pre = cases[5][1]
    ratio = sink_raw / t_pre
    cpu_pre, cpu_sink = cases[5][2] / cases[5][3], cases[0][2] / cases[0][3]
    cpu_sink_wb = cases[2][2] / cases[2][3]
    print("SUMMARY|daemon|frames: h5recd records, lz4 pre-compressed, uncompressed-eq MB/s|"
          "%.1f|loopback TCP into a file (raw stream)|%.1f|%.2f|>= 2.00|%s" % (
              frame_bytes / 1e6 / t_pre, frame_bytes / 1e6 / sink_raw, ratio,
              "met" if ratio >= 2 else "NOT met"))
    print("SUMMARY|daemon|frames: lz4 pre-compressed, recorder CPU ns per stored byte|"
          "%.2f|tcp_sink CPU ns per byte|%.2f|%.2f|<= 1.00|%s" % (
              cpu_pre * 1e9, cpu_sink * 1e9, cpu_pre / cpu_sink,
              "met" if cpu_pre <= cpu_sink else "NOT met"))
    print("SUMMARY|daemon|frames: lz4 pre-compressed, recorder CPU ns per stored byte|"
          "%.2f|tcp_sink with writeback every 32 MiB, CPU ns per byte|%.2f|%.2f|<= 1.00|%s" % (
              cpu_pre * 1e9, cpu_sink_wb * 1e9, cpu_pre / cpu_sink_wb,
              "met" if cpu_pre <= cpu_sink_wb else "NOT met"))


SENDER_SAMPLES = 300000  # 3 chunks per frame


def sender_name(how, n):
    return "sender: %s, %d encode thread%s" % (how, n, "" if n == 1 else "s")


def run_senders(bench, threads, results, cpus):
    """One run of each sender case, in turn (interleaved across repeats)."""
    # as many samples as the accelerator run's waveforms, in whole frames
    frames = max(1, bench.args.events * 300000 // SENDER_SAMPLES)
    samples = bench.samples_file(frames * SENDER_SAMPLES)
    for how, expect in (("simulate", bench.args.events), ("send lz4", frames * SENDER_SAMPLES),
                        ("send deflate", frames * SENDER_SAMPLES)):
        for n in threads:
            t, cpu, stored, sent, rec_cpu = bench.run_sender(n, how, samples)
            if stored != expect:
                sys.exit("%s stored %d of %d" % (sender_name(how, n), stored, expect))
            name = sender_name(how, n)
            results.setdefault(name, []).append(t)
            cpus.setdefault(name, []).append(cpu)
            results.setdefault("sent " + name, []).append(sent)
            cpus.setdefault("sent " + name, []).append(rec_cpu)


def print_sender(results, cpus, frame_bytes, threads):
    """The sender's side: --precompress on N encoder threads."""
    med = statistics.median
    print("\nsenders pre-compressing into h5recd, %.1f MB of float32 samples each"
          % (frame_bytes / 1e6))
    print("%-38s %9s %16s %8s %9s %12s %14s" % (
        "case", "median s", "uncompr.-eq MB/s", "vs 1", "sender s", "sender CPU s",
        "recorder CPU s"))
    for how in ("simulate", "send lz4", "send deflate"):
        one = med(results[sender_name(how, 1)]) if 1 in threads else None
        for n in threads:
            name = sender_name(how, n)
            t = med(results[name])
            print("%-38s %9.3f %16.1f %7s %9.3f %12.2f %14.2f" % (
                name, t, frame_bytes / 1e6 / t, "%.2fx" % (one / t) if one else "-",
                med(results["sent " + name]), med(cpus[name]), med(cpus["sent " + name])))
            if one and n != 1:
                print("SUMMARY|daemon|%s --precompress, uncompressed-eq MB/s|%.1f|"
                      "1 encode thread|%.1f|%.2f|-|-" % (name, frame_bytes / 1e6 / t,
                                                          frame_bytes / 1e6 / one, one / t))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default=os.path.join(SOURCE, "build"))
    parser.add_argument("--dir", default=None, help="work directory (default: under /var/tmp)")
    parser.add_argument("--events", type=int, default=300, help="accelerator events (1.2 MB each)")
    parser.add_argument("--lines", type=int, default=1000000, help="weather lines (4 fields each)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--encode-threads", default="1,2",
                        help="sender cases: encoder threads of simulate --precompress, "
                             "comma-separated; empty: none")
    parser.add_argument("--only-sender", action="store_true",
                        help="run the sender cases alone")
    args = parser.parse_args()
    threads = [int(n) for n in args.encode_threads.split(",") if n]
    args.dir = args.dir or tempfile.mkdtemp(prefix="h5rec-bench-", dir="/var/tmp")
    os.makedirs(args.dir, exist_ok=True)
    bench = Bench(args)

    frames = os.path.join(args.dir, "frames.bin")
    lines = os.path.join(args.dir, "lines.txt")
    frame_bytes = bench.generate("accelerator", args.events, frames)
    if args.only_sender:
        results, cpus = {}, {}
        for _ in range(args.repeat):
            run_senders(bench, threads, results, cpus)
        print_sender(results, cpus, frame_bytes, threads)
        return
    precompressed = os.path.join(args.dir, "frames-lz4.bin")
    pre_bytes = bench.generate_precompressed(args.events, precompressed)
    line_bytes = bench.generate("weather", args.lines, lines, ("--stations", "50"))

    results = {}
    cpus = {}

    def record(name, value):
        results.setdefault(name, []).append(value[0])
        cpus.setdefault(name, []).append(value[1])

    for _ in range(args.repeat):
        record("frames: tcp_sink (baseline)", bench.run_sink(frames))
        record(SINK_WB,
               bench.run_sink(frames, WRITEBACK))
        for comp in ("none", "lz4"):
            t, cpu, size, rows = bench.run_daemon(RECORDS.replace("COMPRESSION", comp), frames)
            if rows != args.events:
                sys.exit("records run stored %d events of %d" % (rows, args.events))
            record("frames: h5recd records, %s" % comp, (t, cpu))
            results.setdefault("size " + comp, []).append(size)
        record("pre: tcp_sink, the pre-compressed bytes", bench.run_sink(precompressed))
        t, cpu, size, rows = bench.run_daemon(RECORDS.replace("COMPRESSION", "lz4"),
                                              precompressed)
        if rows != args.events:
            sys.exit("pre-compressed run stored %d events of %d" % (rows, args.events))
        record("pre: h5recd records, lz4 pre-compressed", (t, cpu))
        results.setdefault("size pre", []).append(size)
        record("lines: tcp_sink (baseline)", bench.run_sink(lines))
        t, cpu, size, rows = bench.run_daemon(TABLE.replace("COMPRESSION", "none"), lines)
        if rows != args.lines:
            sys.exit("table run stored %d rows of %d" % (rows, args.lines))
        record("lines: h5recd table, none", (t, cpu))
        run_senders(bench, threads, results, cpus)

    fields = 4 * args.lines
    print("\nh5recd ingest over loopback TCP; medians of %d runs; %s" % (args.repeat, args.dir))
    print("%-34s %10s %9s %12s %16s %8s %12s" % ("case", "MB sent", "median s", "MB/s",
                                                "fields/s", "ratio", "recv ns/B"))
    base = {"frames": statistics.median(results["frames: tcp_sink (baseline)"]),
            "lines": statistics.median(results["lines: tcp_sink (baseline)"])}
    for name, times in results.items():
        if name.startswith("size") or name.startswith("pre") or name.startswith(("sender", "sent ")):
            continue
        kind = name.split(":")[0]
        nbytes = frame_bytes if kind == "frames" else line_bytes
        t = statistics.median(times)
        rate = "%.0f" % (fields / t) if kind == "lines" else "-"
        cpu_per_byte = statistics.median(cpus[name]) / nbytes * 1e9
        print("%-34s %10.1f %9.3f %12.1f %16s %7.2fx %12.2f" % (
            name, nbytes / 1e6, t, nbytes / 1e6 / t, rate, base[kind] / t, cpu_per_byte))
    # One line per figure for tests/bench/run's combined table.
    print_precompressed(results, cpus, base["frames"], frame_bytes, pre_bytes)
    if threads:
        print_sender(results, cpus, frame_bytes, threads)
    for name, times in results.items():
        if (name.startswith("size") or name.startswith("pre") or name.startswith(("sender", "sent ")) or
                "baseline" in name):
            continue
        kind = name.split(":")[0]
        nbytes = frame_bytes if kind == "frames" else line_bytes
        t = statistics.median(times)
        if kind == "lines":
            rate = fields / t
            print("SUMMARY|daemon|%s, fields/s|%.0f|loopback TCP into a file, MB/s|%.1f|%.2f|"
                  ">= 1e6 fields/s|%s" % (name, rate, nbytes / 1e6 / base[kind], base[kind] / t,
                                           "met" if rate >= 1e6 else "NOT met"))
        else:
            # The goal is for uncompressed frames; LZ4 is reported alongside.
            ratio = base[kind] / t
            goal, verdict = ((">= 0.80", "met" if ratio >= 0.8 else "NOT met")
                             if name.endswith("none") else ("-", "-"))
            print("SUMMARY|daemon|%s, MB/s|%.1f|loopback TCP into a file|%.1f|%.2f|%s|%s" % (
                name, nbytes / 1e6 / t, nbytes / 1e6 / base[kind], ratio, goal, verdict))
    for comp in ("none", "lz4"):
        size = statistics.median(results["size " + comp])
        print("records file size, %-4s: %.1f MB (%.2f of the bytes sent)" % (
            comp, size / 1e6, size / frame_bytes))
    print("ratio = baseline median time / case median time (1.00x = as fast as the baseline)")
    print("recv ns/B = median CPU time (user + system) of the receiving process from the "
          "start of the send to its exit, per byte sent")
    subprocess.run(["rm", "-rf", args.dir], check=False)


if __name__ == "__main__":
    main()
