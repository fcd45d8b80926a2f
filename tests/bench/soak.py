#!/usr/bin/python3
"""Overload and soak: many concurrent connections of both protocols for
minutes, against one h5recd.

  * N/2 TCP connections send line protocol (one station each),
  * N/2 TCP connections send DATA frames (one board each, int16),
  * every second the recorder's VmRSS and open descriptors are sampled.

At the end the recorder is stopped with SIGTERM, and the run checks that
  * RSS stayed flat: the last third's median is within --rss-slack of the
    middle third's (the first is warm-up; a leak grows it without bound),
  * sockets returned to where they started (none leaked),
  * the counters are consistent: every sample sent is either in the file or
    counted as dropped (sent = written + counted drops).

This is a benchmark mode, not part of the default test run (5 minutes by
default). usage: tests/bench/soak.py [--build DIR] [--connections 200]
                 [--duration 300] [--rate 50]
"""
import argparse
import json
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

import h5py

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
T0 = 1700000000_000000000
SAMPLES_PER_FRAME = 256


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vm_rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def open_sockets(pid):
    """Sockets the process holds (files are not counted: the output file
    opens with the first data and stays open)."""
    count = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            count += os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("socket:")
        except OSError:
            pass
    return count


def frame(seq, key, samples):
    """A DATA frame without CRC (SPEC §3.1), int16 samples."""
    payload = struct.pack("<%dh" % len(samples), *samples)
    return struct.pack("<4sBBBBHHIQqQ", b"H5RF", 1, 1, 3, 0, len(key), 0, len(payload),
                       seq, T0 + seq * 1000000, 0) + key + payload


class Load:
    """Round-robin senders on non-blocking sockets; a connection whose send
    buffer is full waits (the recorder's back-pressure) instead of piling up
    data in this process."""

    def __init__(self, line_port, frame_port, connections):
        self.conns = []
        for i in range(connections):
            kind = "line" if i % 2 == 0 else "frame"
            s = socket.create_connection(("127.0.0.1", line_port if kind == "line" else frame_port))
            s.setblocking(False)
            self.conns.append({"sock": s, "kind": kind, "id": i, "seq": 0, "pending": b""})
        self.samples_sent = 0
        self.rows_sent = 0

    def produce(self, conn):
        conn["seq"] += 1
        if conn["kind"] == "line":
            self.rows_sent += 1
            self.samples_sent += 2
            return ("weather,station=s%d temperature=%d.5,wind=%di %d\n"
                    % (conn["id"], conn["seq"] % 40, conn["seq"] % 7,
                       T0 + conn["seq"] * 1000000)).encode()
        self.samples_sent += SAMPLES_PER_FRAME
        return frame(conn["seq"], b"b%d/adc0" % conn["id"], [conn["seq"] % 1000] * SAMPLES_PER_FRAME)

    def tick(self, per_conn):
        """Queue per_conn more units on every connection and push bytes."""
        for conn in self.conns:
            if len(conn["pending"]) < 1 << 20:
                conn["pending"] += b"".join(self.produce(conn) for _ in range(per_conn))
            try:
                n = conn["sock"].send(conn["pending"])
                conn["pending"] = conn["pending"][n:]
            except BlockingIOError:
                pass

    def finish(self, timeout=120):
        deadline = time.monotonic() + timeout
        while any(c["pending"] for c in self.conns) and time.monotonic() < deadline:
            for conn in self.conns:
                if conn["pending"]:
                    try:
                        n = conn["sock"].send(conn["pending"])
                        conn["pending"] = conn["pending"][n:]
                    except BlockingIOError:
                        pass
            time.sleep(0.01)
        for conn in self.conns:
            conn["sock"].close()
        if any(c["pending"] for c in self.conns):
            sys.exit("the recorder did not take all data within %d s" % timeout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default=os.path.join(SOURCE, "build"))
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--duration", type=float, default=300)
    parser.add_argument("--rate", type=int, default=50, help="lines or frames per connection per second")
    parser.add_argument("--rss-slack", type=float, default=0.10)
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="h5rec-soak-", dir="/var/tmp")
    line_port, frame_port = free_port(), free_port()
    schema = os.path.join(work, "soak.yaml")
    with open(schema, "w") as f:
        f.write("""name: soak
control: {{ socket: "{work}/control.sock" }}
output: {{ directory: "{work}/out", file: "soak-{{seq}}.h5", flush: 1s }}
listen:
  - {{ protocol: line, transport: tcp, address: "127.0.0.1:{lp}" }}
  - {{ protocol: frame, transport: tcp, address: "127.0.0.1:{fp}" }}
limits: {{ max_buffer: 64MiB }}
streams:
  - name: weather
    match: {{ measurement: weather }}
    group: "/{{station}}"
    layout: table
    defaults: {{ dtype: float32 }}
    channels: {{ temperature: {{}}, wind: {{ dtype: int32 }} }}
  - name: adc
    match: {{ key: "{{board}}/{{channel}}" }}
    group: "/{{board}}"
    layout: stream
    defaults: {{ dtype: int16, dt: 1.0e-6, chunk: 65536, compression: lz4 }}
    channels: {{ adc0: {{}} }}
""".format(work=work, lp=line_port, fp=frame_port))
    log = open(os.path.join(work, "h5recd.log"), "w")
    proc = subprocess.Popen([os.path.join(args.build, "src", "h5recd"), "-c", schema,
                             "-l", "warning"], stderr=log)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", frame_port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                sys.exit("h5recd did not start; see " + log.name)
            time.sleep(0.05)
    fds_start = open_sockets(proc.pid)
    load = Load(line_port, frame_port, args.connections)
    rss, fds = [], []
    started = time.monotonic()
    next_sample = started
    while time.monotonic() - started < args.duration:
        load.tick(max(1, args.rate // 10))
        time.sleep(0.1)
        if time.monotonic() >= next_sample:
            rss.append(vm_rss_kb(proc.pid))
            fds.append(open_sockets(proc.pid))
            next_sample += 1
    load.finish()
    time.sleep(0.5)
    fds_after_close = open_sockets(proc.pid)
    status = json.loads(subprocess.run(
        [os.path.join(args.build, "src", "h5rec"), "status", "--socket",
         os.path.join(work, "control.sock"), "--json"], capture_output=True, text=True,
        check=True).stdout)
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=300)
    log.close()

    written = 0
    env_plugin = os.environ.get("HDF5_PLUGIN_PATH")
    os.environ["HDF5_PLUGIN_PATH"] = "/usr/lib/x86_64-linux-gnu/hdf5/serial/plugins"
    for root, _, names in os.walk(os.path.join(work, "out")):
        for name in names:
            with h5py.File(os.path.join(root, name), "r") as f:
                for g in f:
                    for d in ("temperature", "wind", "adc0"):
                        if d in f[g]:
                            written += f[g][d].shape[0]
    if env_plugin is not None:
        os.environ["HDF5_PLUGIN_PATH"] = env_plugin
    counters = status["counters"]
    drops = counters["udp_drops"] + counters["write_errors"] + counters["bad_data"]
    # The first third is warm-up (chunk buffers fill, groups appear); a leak
    # shows as growth from the middle third to the last.
    third = max(1, len(rss) // 3)
    rss_first, rss_last = statistics.median(rss[third:2 * third]), statistics.median(rss[-third:])

    print("\nsoak: %d connections (half lines, half frames), %.0f s, %d units/s per connection"
          % (args.connections, args.duration, args.rate))
    print("%-40s %s" % ("recorder exit status", rc))
    print("%-40s %d" % ("samples sent", load.samples_sent))
    print("%-40s %d" % ("samples accepted (status)", counters["samples"]))
    print("%-40s %d" % ("samples in the files", written))
    print("%-40s %d" % ("counted drops", drops))
    print("%-40s %.1f / %.1f MB (%+.1f%%)" % ("VmRSS median, middle / last third",
          rss_first / 1024, rss_last / 1024, 100 * (rss_last - rss_first) / rss_first))
    print("%-40s %.1f MB" % ("VmRSS peak", max(rss) / 1024))
    print("%-40s %d / %d / %d" % ("sockets: start / peak / after close", fds_start,
                                  max(fds), fds_after_close))
    ok = (rc == 0 and written + drops == load.samples_sent and counters["samples"] == written
          and rss_last <= rss_first * (1 + args.rss_slack) and fds_after_close == fds_start)
    print("RESULT:", "pass" if ok else "FAIL")
    subprocess.run(["rm", "-rf", work], check=False)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
