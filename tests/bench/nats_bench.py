#!/usr/bin/python3
"""Frames from NATS JetStream into h5recd (docs/scale-out.md).

One nats-server (JetStream store in a temporary directory under /var/tmp)
holds N records of 64 KiB (one DATA frame of 8192 int64 samples each,
published beforehand with tests/tools/nats_publish). Measured, each from a
new durable consumer of the whole stream:

- baseline: fetch and acknowledge every message, storing nothing
  (`nats_publish drain`): what the broker delivers;
- h5recd with the stream as its source, records layout, uncompressed:
  from the start of h5recd until the broker reports every message
  acknowledged, that is durable in the file.

Prints a table and a SUMMARY line for tests/bench/run.
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import tempfile
import time
import urllib.request



def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def encode_frame(key, payload, seq):
    """A DATA frame of int64 samples (SPEC §3.1), without the optional CRC
    trailer: the bench measures the recorder, not Python computing CRCs."""
    key = key.encode()
    header = struct.pack("<4sBBBBHHIQqQ", b"H5RF", 1, 1, 7, 0, len(key), 0, len(payload), seq,
                         1767225600000000000 + seq, 0)
    return header + key + payload


def consumer_state(monitor, name):
    with urllib.request.urlopen(f"http://127.0.0.1:{monitor}/jsz?consumers=true",
                                timeout=5) as r:
        data = json.load(r)
    for account in data.get("account_details", []):
        for s in account.get("stream_detail", []):
            for c in s.get("consumer_detail") or []:
                if c["name"] == name:
                    return c
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--records", type=int, default=2000)
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    h5recd = os.path.join(build, "src", "h5recd")
    tool = os.path.join(build, "tests", "tools", "nats_publish")
    server = shutil.which("nats-server") or "/usr/sbin/nats-server"
    work = tempfile.mkdtemp(prefix="h5rec-nats-bench-", dir="/var/tmp")
    port, monitor = free_port(), free_port()
    url = f"nats://127.0.0.1:{port}"
    procs = []
    try:
        nats = subprocess.Popen([server, "-js", "-sd", os.path.join(work, "js"), "-a",
                                 "127.0.0.1", "-p", str(port), "-m", str(monitor)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(nats)
        for _ in range(500):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{monitor}/healthz", timeout=2):
                    break
            except OSError:
                time.sleep(0.02)
        subprocess.run([tool, "stream", url, "B", "bench.data", "1"], check=True)
        import numpy as np
        out = bytearray()
        for i in range(args.records):
            frame = encode_frame("b/wave", np.full(8192, i, "<i8").tobytes(), i + 1)
            out += struct.pack("<I", len(frame)) + frame
        total = args.records * 8192 * 8
        subprocess.run([tool, "publish", url, "bench.data", "bench"], input=bytes(out),
                       check=True, stdout=subprocess.DEVNULL)

        drained = subprocess.run([tool, "drain", url, "B", "base", str(args.records)],
                                 check=True, capture_output=True, text=True).stdout.split()
        base_s = float(drained[-1])

        schema = os.path.join(work, "schema.yaml")
        with open(schema, "w") as f:
            f.write(f"""name: bench
output: {{ directory: {work}/out, flush: 1s }}
control: {{ socket: {work}/control.sock }}
sources:
  - nats: {{ servers: [{url}], stream: B, consumer: rec, protocol: frame,
             ack_wait: 60s, max_ack_pending: 1024 }}
limits: {{ max_buffer: 512MiB }}
streams:
  - name: b
    match: {{ key: "b/{{channel}}" }}
    group: /b
    layout: records
    samples: 8192
    dt: 1.0e-6
    channels: {{ wave: {{ dtype: int64 }} }}
""")
        start = time.monotonic()
        rec = subprocess.Popen([h5recd, "-c", schema, "-l", "warning"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(rec)
        while True:
            c = consumer_state(monitor, "rec")
            if c and c["ack_floor"]["stream_seq"] >= args.records:
                break
            if rec.poll() is not None or time.monotonic() - start > 600:
                raise SystemExit("h5recd did not store every record")
            time.sleep(0.02)
        rec_s = time.monotonic() - start
        rec.terminate()
        rec.wait(timeout=60)

        mb = total / 1e6
        print(f"{args.records} records of 64 KiB ({mb:.0f} MB), one nats-server, loopback")
        print(f"  broker: fetch + ack, nothing stored   {base_s:7.2f} s  {mb / base_s:8.1f} MB/s")
        print(f"  h5recd: fetch, store, fsync, ack       {rec_s:7.2f} s  {mb / rec_s:8.1f} MB/s")
        print("SUMMARY|nats|frames from JetStream into h5recd, records (%.0f MB), MB/s|%.1f|"
              "JetStream fetch + ack, nothing stored|%.1f|%.2f||" % (
                  mb, mb / rec_s, mb / base_s, base_s / rec_s))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
