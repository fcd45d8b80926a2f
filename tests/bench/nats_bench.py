#!/usr/bin/python3
"""JetStream into one and two recorders against direct TCP (issue 12's row).

Two payload kinds, the same bytes in every row of a kind:

- 400 kB frames: DATA frames of 100,000 float32 samples (the accelerator's
  waveform), keyed dust/first_detector, CRC-32C trailer, as `h5rec send`
  encodes them; stored in a records layout (one row per frame),
  uncompressed;
- 5000-line batches: weather line protocol (four float fields, 50
  stations), 5000 lines to a NATS message; stored in a table layout,
  uncompressed.

For each kind, three rows:

  (a) direct TCP: the concatenated messages sent by `h5rec send --raw
      --no-ack` to a frame (or line) listener of one h5recd;
  (b) JetStream into one h5recd (a `sources: nats` schema, no listener);
  (c) JetStream into two h5recd sharing the durable consumer (same schema
      but the control socket, `--shard a` and `--shard b` in one output
      directory);

and, for reference, the broker alone: a new consumer fetching and
acknowledging every message, storing nothing (`nats_publish drain`).

One nats-server (JetStream store in the work directory, loopback) is
started by the benchmark and stopped at the end. Every message is
published to it beforehand with tests/tools/nats_publish, outside the
timing; each NATS run reads the whole stream through a new durable
consumer.

Timing, the same end in every row: from starting the h5recd process(es)
until every one has exited after SIGTERM, with every file closed and
fsync'd. TCP: SIGTERM once the sender has written its last byte and
exited (h5recd then stores what it holds, flushes and exits). NATS:
SIGTERM once the broker reports every message acknowledged, which a
recorder does only after the flush that made the message durable (so the
NATS rows also wait for a periodic flush; the TCP row's last flush is the
one at exit). Every row uses `output.flush: 100ms` so that this wait is
short next to the run (with the default 1 s it would dominate runs of a
second or two), and the NATS sources fetch with `expires: 100ms`, so that
a stop waits at most that long for an idle fetch. After each NATS run the
broker must still report every message acknowledged, and after every run
the files must hold each frame (or line) sent exactly once, checked value
by value; the benchmark fails otherwise.

CPU: user + system time of the h5recd processes (wait4), summed over both
in (c), per byte; beside it the delivering side's CPU per byte (the TCP
sender, or nats-server during the run). Each case runs --repeat times,
interleaved; the tables show medians and ratios to the direct-TCP row of
the same run. Also counted: messages the broker delivered more than once,
and fetches the recorders logged as failed (each pauses the source for
250 ms). Prints SUMMARY lines for tests/bench/run.

usage: tests/bench/nats_bench.py [--build DIR] [--dir DIR] [--frames N]
                                 [--lines N] [--repeat N] [--fetch-batch N]
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"

SAMPLES = 100000          # float32 samples per frame: 400 kB
KEY = "dust/first_detector"
BATCH = 5000              # lines per NATS message
STATIONS = 50
# a waveform of 14-bit steps; row i holds i in its first sample
BASE = (((np.arange(SAMPLES, dtype=np.int64) * 2654435761) % 16384) - 8192).astype("<f4") * 1e-4
GIVE_UP = 600


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, procs):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            sys.exit("h5recd exited before it listened")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.005)
    sys.exit("h5recd did not listen on %d" % port)


def wait_cpu(proc):
    """Reap proc; returns (exit code, its user + system CPU seconds)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_utime + usage.ru_stime


def acked(c, n):
    """The consumer state c says all n messages were delivered and acknowledged."""
    return (c is not None and c["num_pending"] == 0 and c["num_ack_pending"] == 0
            and c["ack_floor"]["stream_seq"] >= n)


def proc_cpu(pid):
    """User + system CPU seconds of a running process (ours, not a child we reap)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Broker:
    def __init__(self, work):
        self.port, self.monitor = free_port(), free_port()
        self.url = "nats://127.0.0.1:%d" % self.port
        self.log = open(os.path.join(work, "nats-server.log"), "w")
        self.proc = subprocess.Popen([SERVER, "-js", "-sd", os.path.join(work, "js"),
                                      "-a", "127.0.0.1", "-p", str(self.port),
                                      "-m", str(self.monitor)],
                                     stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % self.monitor,
                                            timeout=2):
                    break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    sys.exit("nats-server did not start, see %s" % self.log.name)
                time.sleep(0.02)

    def consumer(self, stream, name):
        with urllib.request.urlopen("http://127.0.0.1:%d/jsz?consumers=true" % self.monitor,
                                    timeout=5) as r:
            data = json.load(r)
        for account in data.get("account_details", []):
            for s in account.get("stream_detail", []):
                if s["name"] != stream:
                    continue
                for c in s.get("consumer_detail") or []:
                    if c["name"] == name:
                        return c
        return None

    def cpu(self):
        return proc_cpu(self.proc.pid)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


SCHEMA_HEAD = """name: bench
output: {{ directory: "{out}", file: "bench-{{shard}}-{{seq}}.h5", flush: 100ms }}
control: {{ socket: "{control}" }}
limits: {{ max_buffer: 512MiB }}
"""

STREAMS = {
    "frames": """streams:
  - name: dust
    match: { key: "dust/{channel}" }
    group: /dust
    layout: records
    samples: 100000
    dt: 2.0e-8
    defaults: { dtype: float32, compression: none }
    channels: { first_detector: {} }
""",
    "lines": """streams:
  - name: weather
    match: { measurement: weather }
    group: "/{station}"
    layout: table
    defaults: { dtype: float32, compression: none }
    channels: { temperature: {}, wind: {}, pressure: {}, humidity: {} }
""",
}

PROTOCOL = {"frames": "frame", "lines": "line"}
STREAM_NAME = {"frames": "BF", "lines": "BL"}


class Bench:
    def __init__(self, args):
        self.args = args
        self.h5rec = os.path.join(args.build, "src", "h5rec")
        self.h5recd = os.path.join(args.build, "src", "h5recd")
        self.tool = os.path.join(args.build, "tests", "tools", "nats_publish")
        self.sink = os.path.join(args.build, "tests", "tools", "tcp_sink")
        for exe in (self.h5rec, self.h5recd, self.tool, self.sink):
            if not os.access(exe, os.X_OK):
                sys.exit("missing %s: build first (cmake --build %s)" % (exe, args.build))
        if not os.access(SERVER, os.X_OK):
            sys.exit("nats-server is not installed (.ci/packages)")
        self.dir = args.dir
        self.t0 = (time.time_ns() // 10**9 - 3600) * 10**9
        self.broker = None
        self.runs = 0
        self.redelivered = 0
        self.fetch_failed = {}
        self.live = []

    # -- the data -------------------------------------------------------------------

    def make_frames(self, n):
        """n DATA frames as `h5rec send` encodes them (into tcp_sink, keeping
        the bytes with --tee); returns the stream's path and each frame's
        (offset, length)."""
        samples = os.path.join(self.dir, "samples.f32")
        with open(samples, "wb") as f:
            row = BASE.copy()
            for i in range(n):
                row[0] = i
                f.write(row.tobytes())
        path = os.path.join(self.dir, "frames.bin")
        port = free_port()
        sink = subprocess.Popen([self.sink, str(port), os.devnull], stdout=subprocess.PIPE,
                                text=True)
        sink.stdout.readline()  # "listening"
        subprocess.run([self.h5rec, "send", "-k", KEY, "-d", "float32", "-n", str(SAMPLES),
                        "--no-ack", "--to", "tcp:127.0.0.1:%d" % port, "--t0", str(self.t0),
                        "--dt", "2e-8", "--tee", path, samples], check=True,
                       stdout=subprocess.DEVNULL)
        sink.wait()
        os.unlink(samples)
        spans, off, size = [], 0, os.path.getsize(path)
        with open(path, "rb") as f:
            while off < size:
                f.seek(off)
                head = f.read(40)
                if head[:4] != b"H5RF":
                    sys.exit("frames.bin: no frame at byte %d" % off)
                key_len = int.from_bytes(head[8:10], "little")
                payload_len = int.from_bytes(head[12:16], "little")
                length = 40 + key_len + payload_len + (4 if head[7] & 1 else 0)
                if head[5] == 1:  # DATA; a HELLO would go to TCP only
                    spans.append((off, length))
                off += length
        if len(spans) != n:
            sys.exit("h5rec send wrote %d DATA frames, not %d" % (len(spans), n))
        return path, spans

    def make_lines(self, n):
        """n weather lines, line i with temperature=i; messages of BATCH lines.
        The TCP stream is the messages back to back."""
        path = os.path.join(self.dir, "lines.txt")
        spans, off = [], 0
        with open(path, "w") as f:
            for first in range(0, n, BATCH):
                text = "".join(
                    "weather,station=s%02d temperature=%d,wind=%.1f,pressure=%.1f,"
                    "humidity=%.1f %d\n" % (i % STATIONS, i, (i % 200) / 10, 980 + (i % 500) / 10,
                                            (i % 1000) / 10, self.t0 + i * 1000000)
                    for i in range(first, min(n, first + BATCH)))
                f.write(text)
                spans.append((off, len(text)))
                off += len(text)
        return path, spans

    def publish(self, kind, path, spans):
        """Every message into its own stream, before any timing."""
        stream = STREAM_NAME[kind]
        subject = "bench." + kind
        subprocess.run([self.tool, "stream", self.broker.url, stream, subject, "1"], check=True)
        msgs = os.path.join(self.dir, "msgs.bin")
        with open(path, "rb") as src, open(msgs, "wb") as out:
            for off, length in spans:
                src.seek(off)
                out.write(length.to_bytes(4, "little") + src.read(length))
        with open(msgs, "rb") as stdin:
            subprocess.run([self.tool, "publish", self.broker.url, subject, "bench-" + kind],
                           stdin=stdin, check=True, stdout=subprocess.DEVNULL)
        os.unlink(msgs)

    # -- the runs -------------------------------------------------------------------

    def schema(self, work, kind, shard, source=None, port=None):
        text = SCHEMA_HEAD.format(out=os.path.join(work, "out"),
                                  control=os.path.join(work, "control-%s.sock" % shard))
        if port is not None:
            text += ('listen: [ { protocol: %s, transport: tcp, address: "127.0.0.1:%d" } ]\n'
                     % (PROTOCOL[kind], port))
        if source is not None:
            text += ("sources:\n  - nats: { servers: [%s], stream: %s, consumer: %s, "
                     "protocol: %s, fetch: { batch: %d, max_bytes: 8MiB, expires: 100ms }, "
                     "ack_wait: 60s, max_ack_pending: 1024 }\n"
                     % (self.broker.url, STREAM_NAME[kind], source, PROTOCOL[kind],
                        self.args.fetch_batch))
        text += STREAMS[kind]
        path = os.path.join(work, "schema-%s.yaml" % shard)
        with open(path, "w") as f:
            f.write(text)
        return path

    def start(self, work, schemas):
        procs, logs = [], []
        for shard, schema in schemas:
            log = open(os.path.join(work, "h5recd-%s.log" % shard), "w")
            logs.append(log)
            procs.append(subprocess.Popen([self.h5recd, "-c", schema, "-l", "warning",
                                           "--shard", shard], stderr=log))
        self.live = procs
        return procs, logs

    def stop(self, work, procs, logs):
        """SIGTERM every recorder, reap them; their CPU seconds, summed."""
        for p in procs:
            p.send_signal(signal.SIGTERM)
        cpu = 0.0
        for p in procs:
            rc, c = wait_cpu(p)
            cpu += c
            if rc != 0:
                sys.exit("h5recd failed (exit %d), see %s" % (rc, work))
        end = time.monotonic()
        for log in logs:
            log.close()
        return end, cpu

    def run_tcp(self, kind, stream_path, expect):
        work = tempfile.mkdtemp(prefix="tcp-", dir=self.dir)
        port = free_port()
        schema = self.schema(work, kind, "a", port=port)
        os.sync()  # the previous run's writeback must not land in this one
        t0 = time.monotonic()
        procs, logs = self.start(work, [("a", schema)])
        wait_port(port, procs)
        sender = subprocess.Popen([self.h5rec, "send", "--raw", "--no-ack", "--to",
                                   "tcp:127.0.0.1:%d" % port, stream_path],
                                  stdout=subprocess.DEVNULL)
        rc, send_cpu = wait_cpu(sender)
        if rc != 0:
            sys.exit("h5rec send failed")
        end, cpu = self.stop(work, procs, logs)
        split = self.check(kind, work, expect)
        shutil.rmtree(work)
        return end - t0, cpu, send_cpu, split

    def run_nats(self, kind, recorders, expect, n_msgs):
        self.runs += 1
        consumer = "r%d" % self.runs
        stream = STREAM_NAME[kind]
        work = tempfile.mkdtemp(prefix="nats%d-" % recorders, dir=self.dir)
        shards = "ab"[:recorders]
        schemas = [(s, self.schema(work, kind, s, source=consumer)) for s in shards]
        os.sync()
        broker_cpu = self.broker.cpu()
        t0 = time.monotonic()
        procs, logs = self.start(work, schemas)
        while not acked(self.broker.consumer(stream, consumer), n_msgs):
            if any(p.poll() is not None for p in procs):
                sys.exit("h5recd exited early, see %s" % work)
            if time.monotonic() - t0 > GIVE_UP:
                sys.exit("the broker did not see every message acknowledged in %d s: %s"
                         % (GIVE_UP, json.dumps(self.broker.consumer(stream, consumer))))
            time.sleep(0.01)
        end, cpu = self.stop(work, procs, logs)
        broker_cpu = self.broker.cpu() - broker_cpu
        c = self.broker.consumer(stream, consumer)
        if not acked(c, n_msgs):
            sys.exit("after the stop the broker reports: %s" % json.dumps(c))
        self.redelivered += c["num_redelivered"]
        for name in os.listdir(work):
            if name.endswith(".log"):
                with open(os.path.join(work, name)) as f:
                    failed = sum("fetch failed" in line for line in f)
                self.fetch_failed[kind] = self.fetch_failed.get(kind, 0) + failed
        split = self.check(kind, work, expect, shards)
        shutil.rmtree(work)
        return end - t0, cpu, broker_cpu, split

    def run_drain(self, kind, n_msgs):
        self.runs += 1
        broker_cpu = self.broker.cpu()
        out = subprocess.run([self.tool, "drain", self.broker.url, STREAM_NAME[kind],
                              "d%d" % self.runs, str(n_msgs)], check=True, capture_output=True,
                             text=True).stdout.split()
        return float(out[-1]), self.broker.cpu() - broker_cpu

    # -- what the files hold --------------------------------------------------------

    def check(self, kind, work, expect, shards="a"):
        """Every frame or line sent is in the files exactly once, value by
        value; returns how many each recorder stored."""
        out = os.path.join(work, "out")
        seen, split = [], dict.fromkeys(shards, 0)
        for name in sorted(os.listdir(out)):
            shard = name.split("-")[1]
            with h5py.File(os.path.join(out, name), "r") as f:
                if kind == "frames":
                    got = self.check_frames(f)
                else:
                    got = self.check_lines(f)
            seen.append(got)
            split[shard] = split.get(shard, 0) + len(got)
        seen = np.sort(np.concatenate(seen)) if seen else np.zeros(0)
        if len(seen) != expect or not np.array_equal(seen, np.arange(expect)):
            sys.exit("%s: the files hold %d rows, not each of the %d sent once (%s)"
                     % (kind, len(seen), expect, work))
        return [split[s] for s in sorted(split)]

    @staticmethod
    def check_frames(f):
        if "dust/first_detector" not in f:
            return np.zeros(0, np.int64)
        ds = f["dust/first_detector"]
        ids = []
        for start in range(0, ds.shape[0], 100):
            rows = ds[start:start + 100]
            if not np.array_equal(rows[:, 1:], np.broadcast_to(BASE[1:], rows[:, 1:].shape)):
                sys.exit("a stored waveform differs from the one sent")
            ids.append(rows[:, 0].astype(np.int64))
        return np.concatenate(ids) if ids else np.zeros(0, np.int64)

    def check_lines(self, f):
        ids = []
        for name, g in f.items():
            if not isinstance(g, h5py.Group) or "temperature" not in g:
                continue
            t = g["temperature"][...].astype(np.int64)
            if g["time"].shape[0] != len(t) or g["wind"].shape[0] != len(t):
                sys.exit("station %s: columns of different lengths" % name)
            if not np.all(t % STATIONS == int(name[1:])):
                sys.exit("station %s holds lines of another station" % name)
            times = g["time"][...].astype(np.int64)
            if not np.array_equal(np.sort(times), np.sort(self.t0 + t * 1000000)):
                sys.exit("station %s: times differ from the lines sent" % name)
            ids.append(t)
        return np.concatenate(ids) if ids else np.zeros(0, np.int64)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(SOURCE, "build"))
    ap.add_argument("--dir", default=None, help="work directory (default: under /var/tmp)")
    ap.add_argument("--frames", type=int, default=2500, help="400 kB frames (one a message)")
    ap.add_argument("--lines", type=int, default=2500000,
                    help="weather lines (%d a message)" % BATCH)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--fetch-batch", type=int, default=64,
                    help="the sources' fetch.batch (max_bytes is 8MiB)")
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    own_dir = args.dir is None
    args.dir = args.dir or tempfile.mkdtemp(prefix="h5rec-nats-bench-", dir="/var/tmp")
    os.makedirs(args.dir, exist_ok=True)
    bench = Bench(args)
    ok = False
    try:
        bench.broker = Broker(args.dir)
        frames, frame_spans = bench.make_frames(args.frames)
        lines, line_spans = bench.make_lines(args.lines)
        bench.publish("frames", frames, frame_spans)
        bench.publish("lines", lines, line_spans)
        kinds = {
            "frames": (frames, args.frames, len(frame_spans), os.path.getsize(frames)),
            "lines": (lines, args.lines, len(line_spans), os.path.getsize(lines)),
        }
        res = {}

        def record(kind, case, value):
            res.setdefault((kind, case), []).append(value)

        for _ in range(args.repeat):
            for kind, (path, units, n_msgs, _) in kinds.items():
                record(kind, "tcp", bench.run_tcp(kind, path, units))
                record(kind, "nats1", bench.run_nats(kind, 1, units, n_msgs))
                record(kind, "nats2", bench.run_nats(kind, 2, units, n_msgs))
                t, cpu = bench.run_drain(kind, n_msgs)
                record(kind, "drain", (t, None, cpu, None))
        report(args, kinds, res)
        print("messages the broker delivered again (ack_wait passed), all NATS runs: %d"
              % bench.redelivered)
        print("fetches the recorders logged as failed (each pauses 250 ms), all NATS runs: "
              "frames %d, lines %d" % (bench.fetch_failed.get("frames", 0),
                                       bench.fetch_failed.get("lines", 0)))
        ok = True
    finally:
        for p in bench.live:
            if p.returncode is None and p.poll() is None:
                p.kill()
                p.wait()
        if bench.broker:
            bench.broker.stop()
        if own_dir and ok:
            shutil.rmtree(args.dir, ignore_errors=True)
        elif not ok:
            print("kept the work directory with the logs: %s" % args.dir, file=sys.stderr)


CASES = [
    ("tcp", "(a) direct TCP into one h5recd"),
    ("nats1", "(b) JetStream into one h5recd"),
    ("nats2", "(c) JetStream into two h5recd"),
    ("drain", "    broker alone: fetch + ack"),
]


def report(args, kinds, res):
    med = statistics.median
    summary = []
    print("h5recd: JetStream (one nats-server, loopback) against direct TCP; "
          "medians of %d runs, interleaved" % args.repeat)
    for kind, (_, units, n_msgs, nbytes) in kinds.items():
        unit = "frames" if kind == "frames" else "lines"
        if kind == "frames":
            print("\n400 kB frames: %d DATA frames of %d float32 (%.1f MB), one a message, "
                  "records layout, uncompressed" % (units, SAMPLES, nbytes / 1e6))
        else:
            print("\n%d-line batches: %d weather lines (%.1f MB), %d messages, table layout, "
                  "uncompressed" % (BATCH, units, nbytes / 1e6, n_msgs))
        print("%-32s %8s %8s %11s %6s %9s %6s %11s %13s" % (
            "case", "median s", "MB/s", unit + "/s", "× TCP", "rec ns/B", "× TCP",
            "deliver ns/B", "split"))
        t_tcp = med(r[0] for r in res[(kind, "tcp")])
        c_tcp = med(r[1] for r in res[(kind, "tcp")])
        for case, label in CASES:
            runs = res[(kind, case)]
            t = med(r[0] for r in runs)
            deliver = med(r[2] for r in runs) / nbytes * 1e9
            if case == "drain":
                cpu_s, cpu_x, split = "-", "-", "-"
            else:
                c = med(r[1] for r in runs)
                cpu_s, cpu_x = "%.2f" % (c / nbytes * 1e9), "%.2f" % (c / c_tcp)
                split = "/".join("%d" % med(r[3][i] for r in runs)
                                 for i in range(len(runs[0][3])))
            print("%-32s %8.3f %8.1f %11.0f %6.2f %9s %6s %11.2f %13s" % (
                label, t, nbytes / 1e6 / t, units / t, t_tcp / t, cpu_s, cpu_x, deliver,
                split))
            if case in ("nats1", "nats2"):
                what = "one h5recd" if case == "nats1" else "two h5recd"
                c = med(r[1] for r in runs)
                if kind == "frames":
                    summary.append("SUMMARY|nats|400 kB frames via JetStream into %s, MB/s|%.1f|"
                                   "same bytes over TCP into one h5recd|%.1f|%.2f|-|-" % (
                                       what, nbytes / 1e6 / t, nbytes / 1e6 / t_tcp, t_tcp / t))
                else:
                    summary.append("SUMMARY|nats|%d-line batches via JetStream into %s, lines/s|"
                                   "%.0f|same lines over TCP into one h5recd|%.0f|%.2f|-|-" % (
                                       BATCH, what, units / t, units / t_tcp, t_tcp / t))
                summary.append("SUMMARY|nats|%s via JetStream into %s, recorder CPU ns/B|%.2f|"
                               "the same over TCP|%.2f|%.2f|-|-" % (
                                   "400 kB frames" if kind == "frames" else "lines", what,
                                   c / nbytes * 1e9, c_tcp / nbytes * 1e9, c / c_tcp))
    print("\ns: from starting h5recd until every h5recd exited after SIGTERM, sent once the "
          "TCP sender\n   finished, or once the broker reported every message acknowledged "
          "(durable); broker\n   alone: nats_publish drain's own time (a new consumer fetching "
          "and acknowledging all)")
    print("× TCP: speed over row (a)'s, or recorder CPU over row (a)'s; rec ns/B: h5recd user + "
          "system\n   CPU per byte (both in (c)); deliver ns/B: the TCP sender's, or "
          "nats-server's during the run;\n   split: rows stored by each recorder")
    for line in summary:
        print(line)


if __name__ == "__main__":
    main()
