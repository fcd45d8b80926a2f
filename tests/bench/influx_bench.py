#!/usr/bin/python3
"""A weather network into h5recd and into InfluxDB 1.6 (Debian), same lines,
same run.

The peer is the database weather networks use: influxd from Debian's
`influxdb` package, started here on loopback with its data in a temporary
directory (its write-ahead log fsync'd on every write, its defaults
otherwise). h5recd records into a table layout with SWMR on, as shipped in
schemas/weather.yaml (4096-row chunks, deflate level 4 with shuffle, flush
every second). The lines are the same for both: station `sN`, four float
fields (temperature 0.1 degC resolution with a daily swing, wind, pressure,
humidity) and one integer (rain), one reading per station every 10 s.

Three cases:

  steady   500 stations at 50 lines/s for --seconds, twice: each line sent
           on its own, as a station does (to InfluxDB one HTTP POST per
           line), and the lines of each second in one write, as an agent
           such as Telegraf gathers them: the servers' CPU time per second,
           measured after a warm-up in which every station has reported
           and h5recd has created its file. Batched, h5recd runs a second
           time with output.flush 60 s.
  bulk     1,000 stations x 3,000 rows, and x 600 rows (a day at 2.4 min):
           sent as fast as each server takes them (h5recd: 5000-line writes
           on one TCP connection; InfluxDB: 5000-line POSTs from two
           posters), timed until durable (h5recd: until it has exited after
           SIGTERM, every file closed and fsync'd; InfluxDB: until its last
           204, the WAL fsync'd). Reported: lines/s, server CPU, peak RSS,
           and bytes on disk per field (h5recd: its files; InfluxDB: its
           data directory after a full compaction of the shard, series
           index included).
  slow     one station's 4096 readings each flushed on its own (the engine
           through tests/tools/h5w_gen): file bytes per byte of data, and
           against its h5repack copy.

usage: tests/bench/influx_bench.py [--build DIR] [--dir DIR] [--seconds S]
       [--cases steady,bulk,slow]
"""
import argparse
import http.client
import math
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
T0 = 1767225600 * 10**9  # 2026-01-01T00:00:00Z
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def du(path):
    total = 0
    for root, _, names in os.walk(path):
        for n in names:
            try:
                total += os.path.getsize(os.path.join(root, n))
            except OSError:
                pass
    return total


def line(station, i):
    """Reading i of a station: what both servers get."""
    x = i + station * 37
    temp = round(15.0 + 8.0 * ((x % 8640) / 4320.0 - 1.0) ** 2 + (x * 7 % 10) / 10.0, 1)
    return (b"weather,station=s%d temperature=%.1f,wind=%.1f,pressure=%.1f,humidity=%d,"
            b"rain=%di %d\n" % (station, temp, (x * 13 % 120) / 10.0,
                                1000.0 + (x // 30 % 300) / 10.0, 40 + x // 60 % 50,
                                x // 360 % 5, T0 + i * 10 * 10**9))


# ---- the servers ---------------------------------------------------------------------

SCHEMA = """\
name: bench
output: {{ directory: "{out}", file: "bench-{{seq}}.h5", flush: {flush}s, swmr: true }}
control: {{ socket: "{control}" }}
listen:
  - {{ protocol: line, transport: tcp, address: "127.0.0.1:{port}" }}
limits: {{ max_groups: 10000 }}
streams:
  - name: weather
    match: {{ measurement: weather }}
    group: "/{{station}}"
    layout: table
    defaults: {{ dtype: float32, chunk: 4096, compression: deflate, level: 4, shuffle: true }}
    channels:
      temperature: {{}}
      wind: {{}}
      pressure: {{}}
      humidity: {{}}
      rain: {{ dtype: int32, fill: -1 }}
"""


class H5recd:
    def __init__(self, build, work, flush=1):
        self.work = os.path.join(work, "h5rec")
        os.makedirs(self.work)
        self.port = free_port()
        self.out = os.path.join(self.work, "out")
        schema = os.path.join(self.work, "schema.yaml")
        with open(schema, "w") as f:
            f.write(SCHEMA.format(out=self.out, control=os.path.join(self.work, "c.sock"),
                                  port=self.port, flush=flush))
        self.log = open(os.path.join(self.work, "h5recd.log"), "w")
        self.proc = subprocess.Popen([os.path.join(build, "src", "h5recd"), "-c", schema],
                                     stderr=self.log)
        wait_port(self.port, self.proc)
        self.sock = socket.create_connection(("127.0.0.1", self.port))

    def send(self, data):
        self.sock.sendall(data)

    def stop(self):
        """SIGTERM and wait: every file closed and fsync'd. Returns (CPU s, peak MiB)."""
        self.sock.close()
        peak = peak_rss_mib(self.proc.pid)
        self.proc.terminate()
        _, status, usage = os.wait4(self.proc.pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "h5recd failed"
        return usage.ru_utime + usage.ru_stime, peak

    def disk(self):
        return du(self.out)


INFLUX_CONFIG = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{dir}/meta"
[data]
  dir = "{dir}/data"
  wal-dir = "{dir}/wal"
  query-log-enabled = false
  compact-full-write-cold-duration = "2s"
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
[continuous_queries]
  enabled = false
"""


class Influxd:
    def __init__(self, work):
        self.dir = os.path.join(work, "influx")
        os.makedirs(self.dir)
        self.port = free_port()
        config = os.path.join(self.dir, "influxdb.conf")
        with open(config, "w") as f:
            f.write(INFLUX_CONFIG.format(dir=self.dir, port=self.port, rpc=free_port()))
        self.log = open(os.path.join(self.dir, "influxd.log"), "w")
        self.proc = subprocess.Popen(["influxd", "-config", config], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        wait_port(self.port, self.proc, timeout=30)
        self.query("CREATE DATABASE bench")
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port)

    def query(self, q):
        conn = http.client.HTTPConnection("127.0.0.1", self.port)
        conn.request("POST", "/query?" + urllib.parse.urlencode({"q": q}))
        resp = conn.getresponse()
        resp.read()
        conn.close()
        assert resp.status == 200, resp.status

    def post(self, body, conn=None):
        conn = conn or self.conn
        conn.request("POST", "/write?db=bench&precision=ns", body=body)
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 204, (resp.status, body[:200])

    def compacted_disk(self, timeout=120):
        """Bytes of the data directory once the shard is fully compacted
        (cold after 2 s without writes) and the WAL is empty."""
        deadline, last, stable = time.monotonic() + timeout, -1, 0
        while time.monotonic() < deadline:
            time.sleep(1)
            data = os.path.join(self.dir, "data")
            tsm = [n for _, _, names in os.walk(data) for n in names if n.endswith(".tsm")]
            size = du(data) + du(os.path.join(self.dir, "wal"))
            stable = stable + 1 if size == last and len(tsm) == 1 else 0
            last = size
            if stable >= 3:
                break
        return du(os.path.join(self.dir, "data"))

    def stop(self):
        peak = peak_rss_mib(self.proc.pid)
        cpu = cpu_seconds(self.proc.pid)
        self.proc.terminate()
        self.proc.wait(timeout=60)
        return cpu, peak


def wait_port(port, proc, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not listen")


# ---- the cases ------------------------------------------------------------------------

def steady(args, work, batched):
    stations, rate = 500, 50
    how = "one write a second" if batched else "a write per line"
    rows = []
    # With the lines of each second in one write, h5recd also with
    # output.flush 60 s: what a longer flush buys (see docs/engine.md).
    for name, flush in (("h5recd", 1), ("influxd", 0)) + ((("h5recd", 60),) if batched else ()):
        server = H5recd(args.build, work, flush) if name == "h5recd" else Influxd(work)
        send = server.send if name == "h5recd" else server.post
        for k in range(stations):           # warm-up: every station once
            send(line(k, 0))
        time.sleep(3)
        # The warm-up covers the first flush, which creates the file; the
        # window is whole flush periods, at least two of them (a shorter
        # one may hold no flush at all).
        warm, start = 12.0 + flush, time.monotonic()
        seconds = args.seconds if flush <= 1 else flush * max(2, math.ceil(args.seconds / flush))
        c0 = t0 = None
        i = stations
        while time.monotonic() - start < warm + seconds:
            if c0 is None and time.monotonic() - start >= warm:
                c0, t0 = cpu_seconds(server.proc.pid), time.monotonic()
            n = rate if batched else 1
            send(b"".join(line((i + j) % stations, (i + j) // stations) for j in range(n)))
            i += n
            time.sleep(max(0.0, start + (i - stations) / rate - time.monotonic()))
        cpu = cpu_seconds(server.proc.pid) - c0
        elapsed = time.monotonic() - t0
        server.stop()
        shutil.rmtree(server.work if name == "h5recd" else server.dir)
        rows.append(100.0 * cpu / elapsed)
        if flush > 1:
            name += f", flush {flush} s"
        print(f"steady {name}: {stations} stations, {rate} lines/s, {how}: {cpu:.2f} s CPU "
              f"in {elapsed:.1f} s = {100 * cpu / elapsed:.2f}% of a core", flush=True)
    hv, iv = rows[:2]
    print(f"SUMMARY|influx|500 stations at 50 lines/s, {how}, server CPU %|{hv:.2f}|"
          f"InfluxDB 1.6, %|{iv:.2f}|{hv / iv:.2f}|<= 2|{'met' if hv / iv <= 2 else 'NOT met'}")
    if len(rows) > 2:
        print(f"SUMMARY|influx|500 stations at 50 lines/s, {how}, h5recd with flush 60 s, "
              f"server CPU %|{rows[2]:.2f}|InfluxDB 1.6, %|{iv:.2f}|{rows[2] / iv:.2f}||")


def bulk(args, work, stations, per_station):
    nlines, fields = stations * per_station, stations * per_station * 5
    batches = []
    batch = []
    for i in range(per_station):
        for k in range(stations):
            batch.append(line(k, i))
            if len(batch) == 5000:
                batches.append(b"".join(batch))
                batch = []
    if batch:
        batches.append(b"".join(batch))
    out = {}

    h = H5recd(args.build, work)
    t = time.monotonic()
    for b in batches:
        h.send(b)
    cpu, peak = h.stop()
    out["h5recd"] = (nlines / (time.monotonic() - t), cpu, peak, h.disk() / fields)

    x = Influxd(work)
    t = time.monotonic()
    half = len(batches) // 2

    def poster(part):
        conn = http.client.HTTPConnection("127.0.0.1", x.port)
        for b in part:
            x.post(b, conn)
        conn.close()
    posters = [threading.Thread(target=poster, args=(p,)) for p in (batches[:half],
                                                                   batches[half:])]
    for p in posters:
        p.start()
    for p in posters:
        p.join()
    elapsed = time.monotonic() - t
    cpu_load = cpu_seconds(x.proc.pid)
    disk = x.compacted_disk()
    _, peak = x.stop()
    out["influxd"] = (nlines / elapsed, cpu_load, peak, disk / fields)
    shutil.rmtree(os.path.join(work, "h5rec"))
    shutil.rmtree(os.path.join(work, "influx"))

    shape = f"{stations} stations x {per_station} rows"
    for name, (speed, cpu, peak, per_field) in out.items():
        print(f"bulk {shape}: {name}: {speed:,.0f} lines/s until durable, CPU {cpu:.1f} s, "
              f"peak RSS {peak:.0f} MiB, {per_field:.2f} bytes/field on disk", flush=True)
    hs, hc, hp, hd = out["h5recd"]
    xs, xc, xp, xd = out["influxd"]
    print(f"SUMMARY|influx|{shape}: lines/s until durable|{hs:.0f}|InfluxDB 1.6|{xs:.0f}|"
          f"{hs / xs:.2f}|> 1|{'met' if hs > xs else 'NOT met'}")
    print(f"SUMMARY|influx|{shape}: server CPU s|{hc:.1f}|InfluxDB 1.6|{xc:.1f}|{hc / xc:.2f}||")
    print(f"SUMMARY|influx|{shape}: peak RSS MiB|{hp:.0f}|InfluxDB 1.6|{xp:.0f}|{hp / xp:.2f}||")
    print(f"SUMMARY|influx|{shape}: disk bytes/field|{hd:.2f}|InfluxDB 1.6 compacted|{xd:.2f}|"
          f"{hd / xd:.2f}|<= 0.5|{'met' if hd / xd <= 0.5 else 'NOT met'}")


def slow(args, work):
    d = os.path.join(work, "slow")
    os.makedirs(d)
    schema = os.path.join(d, "s.yaml")
    with open(schema, "w") as f:
        f.write(f"""name: slow
output: {{ directory: "{d}/out", file: "slow-{{seq}}.h5", flush: 1s }}
listen:
  - {{ protocol: line, transport: tcp, address: "127.0.0.1:7601" }}
streams:
  - name: weather
    match: {{ measurement: weather }}
    group: "/{{station}}"
    layout: table
    defaults: {{ dtype: float32, chunk: 4096, compression: deflate, level: 4, shuffle: true }}
    channels: {{ temperature: {{}}, wind: {{}}, pressure: {{}}, humidity: {{}} }}
""")
    gen = os.path.join(args.build, "tests", "tools", "h5w_gen")
    subprocess.run([gen, schema, "slow", "4096"], check=True, capture_output=True)
    (path,) = [os.path.join(d, "out", n) for n in os.listdir(os.path.join(d, "out"))]
    subprocess.run(["h5repack", path, path + ".repacked"], check=True)
    size, packed, data = os.path.getsize(path), os.path.getsize(path + ".repacked"), 4096 * 24
    print(f"slow station: 4096 rows flushed one at a time: {size} bytes on disk for {data} "
          f"bytes of data ({size / data:.2f}), h5repack copy {packed} ({size / packed:.2f}x)")
    print(f"SUMMARY|influx|slow station, bytes on disk per byte of data|{size / data:.3f}|"
          f"its h5repack copy|{packed / data:.3f}|{size / packed:.2f}|<= 2|"
          f"{'met' if size <= 2 * packed else 'NOT met'}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(SOURCE, "build"))
    ap.add_argument("--dir", default="/var/tmp")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--cases", default="steady,bulk,slow")
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    if not shutil.which("influxd"):
        sys.exit("influxd not found: apt-get install influxdb (Debian's InfluxDB 1.6)")
    random.seed(1)
    work = tempfile.mkdtemp(prefix="influx-bench-", dir=args.dir)
    try:
        cases = args.cases.split(",")
        if "slow" in cases:
            slow(args, work)
        if "steady" in cases:
            steady(args, work, batched=False)
            steady(args, work, batched=True)
        if "bulk" in cases:
            bulk(args, work, 1000, 3000)
            bulk(args, work, 1000, 600)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
