"""Recorders on NATS JetStream (docs/scale-out.md): sources in the schema,
acks only for durable data, and nothing lost when a recorder or a broker
dies mid-stream.

Every test starts its own nats-server processes on free loopback ports
with their JetStream store in the test's temporary directory, publishes
with tests/tools/nats_publish (Nats-Msg-Id SENDER:N, published again after
a timeout), and checks with h5py that every message's waveform is in the
files, bit for bit: message i is one DATA frame (event_id 0, so a record
of its own) of 16 int64 samples, i followed by SHA-512(i). Waits are
conditions (what the broker reports acknowledged), with generous timeouts
that only guard against hangs.
"""
import glob
import hashlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import time
import urllib.request

import h5py
import numpy as np
import pytest

from recorder_fixture import (DATA, EVENT, H5REC, H5RECD, T0, WEATHER_STREAM,  # noqa: F401
                              Recording, encode_frame, free_port, recorder)

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
TOOLS = os.environ.get("H5REC_TOOLS_DIR", "build/tests/tools")
PUBLISH = os.path.join(TOOLS, "nats_publish")
SUBJECT = "nt.data"
HANG_GUARD = 120.0

pytestmark = pytest.mark.skipif(not os.path.exists(NATS_SERVER),
                                reason="nats-server is not installed (.ci/packages)")

WAVE_STREAM = """
- name: w
  match: { key: "w/{channel}" }
  group: /w
  layout: records
  samples: 16
  dt: 1.0e-6
  channels: { wave: { dtype: int64 } }
- name: big
  match: { key: "b/{channel}" }
  group: /b
  layout: records
  samples: 8192
  dt: 1.0e-6
  channels: { wave: { dtype: int64 } }
- name: g
  match: { key: "g/{board}/{channel}" }
  group: "/g/{board}"
  layout: records
  samples: 16
  dt: 1.0e-6
  channels: { wave: { dtype: int64 } }
- name: e
  match: { key: "e/{channel}" }
  group: /e
  layout: records
  samples: 16
  dt: 1.0e-6
  event_fields: { n: int64 }
  channels: { wave: { dtype: int64 } }
"""


def wave(i):
    h = hashlib.sha512(str(i).encode()).digest()
    values = np.frombuffer(h + h, dtype="<i8").copy()
    values[0] = i
    return values


def records(first, n):
    out = bytearray()
    for i in range(first, first + n):
        frame = encode_frame(DATA, key="w/wave", payload=wave(i).tobytes(), dtype=7,
                             seq=i + 1, t0=T0 + i * 1000, event_id=0)
        out += struct.pack("<I", len(frame)) + frame
    return bytes(out)


def publish(urls, first, n, sender="s1"):
    """Publish messages FIRST .. FIRST+N-1 with ids SENDER:FIRST+1 ..."""
    r = subprocess.run([PUBLISH, "publish", urls, SUBJECT, sender, str(first + 1)],
                       input=records(first, n), capture_output=True, timeout=HANG_GUARD)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().startswith(f"published {n} "), r.stdout


def wait_for(predicate, what, timeout=HANG_GUARD):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


class NatsServer:
    """One nats-server with JetStream, on loopback; `cluster` gives it a
    route port and the routes of the others (an R3 cluster)."""

    def __init__(self, workdir, name, cluster_ports=None, route_port=None):
        self.name, self.workdir = name, str(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.port, self.monitor = free_port(), free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        lines = [f"server_name: {name}", "listen: 127.0.0.1:%d" % self.port,
                 "http: 127.0.0.1:%d" % self.monitor,
                 "jetstream { store_dir: %s }" % json.dumps(os.path.join(self.workdir, "js"))]
        if cluster_ports:
            routes = ", ".join(f"nats-route://127.0.0.1:{p}" for p in cluster_ports)
            lines.append("cluster { name: h5rec, listen: 127.0.0.1:%d, routes: [%s] }"
                         % (route_port, routes))
        self.config = os.path.join(self.workdir, "nats.conf")
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.log_path = os.path.join(self.workdir, "nats.log")
        self.proc = None

    def start(self):
        log = open(self.log_path, "w")
        self.proc = subprocess.Popen([NATS_SERVER, "-c", self.config], stdout=log,
                                     stderr=subprocess.STDOUT)
        log.close()
        return self

    def jsz(self, what="consumers=true"):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.monitor}/jsz?{what}",
                                    timeout=5) as r:
            return json.load(r)

    def healthy(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.monitor}/healthz",
                                        timeout=2) as r:
                return json.load(r).get("status") == "ok"
        except OSError:
            return False

    def consumer(self, stream="S", name="recorders"):
        """The consumer's state as this server sees it, or None."""
        try:
            data = self.jsz()
        except OSError:
            return None
        for account in data.get("account_details", []):
            for s in account.get("stream_detail", []):
                if s["name"] != stream:
                    continue
                for c in s.get("consumer_detail") or []:
                    if c["name"] == name:
                        return c
        return None

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def nats(tmp_path):
    """Factory: nats(n) -> [NatsServer] started and healthy (n = 3: a cluster)."""
    made = []

    def make(n=1):
        routes = [free_port() for _ in range(n)] if n > 1 else None
        servers = [NatsServer(tmp_path / f"nats{i}", f"n{i}", routes,
                              routes[i] if routes else None) for i in range(n)]
        made.extend(servers)
        for s in servers:
            s.start()
        wait_for(lambda: all(s.healthy() for s in servers), "nats-server to be healthy")
        return servers

    yield make
    for s in made:
        s.stop()
        print(f"--- log of nats-server {s.name} ---")
        with open(s.log_path, errors="replace") as f:
            print(f.read()[-5000:])


# Long enough that no recorder's own message comes back to it on a slow
# machine (which would store it twice); the failover tests shorten it.
def sources_yaml(urls, ack_wait="30s", max_ack_pending=64, subjects=True, max_bytes="8MiB"):
    servers = ", ".join(urls)
    extra = f", subjects: [{SUBJECT}]" if subjects else ""
    return ("sources:\n"
            f"  - nats: {{ servers: [{servers}], stream: S, consumer: recorders, "
            f"protocol: frame{extra}, ack_wait: {ack_wait}, "
            f"max_ack_pending: {max_ack_pending}, "
            f"fetch: {{ batch: 16, expires: 500ms, max_bytes: {max_bytes} }} }}")


def start_recorder(recorder, urls, args=(), output=None, limits=None, **kw):
    return recorder(WAVE_STREAM, [{"protocol": "metrics", "transport": "tcp"}],
                    output=dict({"flush": "100ms"}, **(output or {})), limits=limits,
                    top=sources_yaml(urls, **kw), args=args)


def source_status(r):
    (src,) = r.status()["sources"]
    return src


def read_waves(rec):
    """Message indexes of every row in a recorder's files, each row checked
    against its message. A file of a killed recorder is still marked open
    for writing: h5clear lifts the mark (it holds what was flushed)."""
    found = []
    for path in sorted(glob.glob(os.path.join(rec.out, "*.h5"))):
        if not rec.running() and rec.returncode is None:
            subprocess.run(["h5clear", "-s", path], check=True, capture_output=True)
        with h5py.File(path, "r") as f:
            if "w/wave" not in f:
                continue
            rows = f["w/wave"][...]
        for row in rows:
            i = int(row[0])
            assert np.array_equal(row, wave(i)), f"message {i} damaged in {path}"
            found.append(i)
    return found


def all_acked(server, n):
    c = server.consumer()
    return (c is not None and c["ack_floor"]["stream_seq"] >= n and c["num_ack_pending"] == 0
            and c["num_pending"] == 0)


def test_source_records_acks_and_reports(nats, recorder):
    """One recorder: every message stored once and acknowledged, the
    consumer created by the recorder, the counters in status and /metrics,
    a clean stop, and {host} and {shard} in the file name."""
    (server,) = nats(1)
    r = start_recorder(recorder, [server.url], args=["--shard", "a1"],
                       output={"file": '"{name}-{host}-{shard}-{seq}.h5"'})
    publish(server.url, 0, 500)
    wait_for(lambda: all_acked(server, 500), "every message acknowledged")
    src = source_status(r)
    assert src["fetched"] == 500 and src["acked"] == 500, src
    assert src["pending"] == 0 and src["naked"] == 0 and src["rejected"] == 0, src
    assert src["connected"] is True
    text = r.control("status").stdout
    assert "nats S/recorders" in text and "500 acked" in text, text
    port = r.port(0)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        page = resp.read().decode()
    assert ('h5rec_source_acked_total{backend="nats",stream="S",consumer="recorders"} 500'
            in page), page
    r.stop()
    found = read_waves(r)
    assert sorted(found) == list(range(500))
    # {host} and {shard}: recorders that share a directory write apart
    (path,) = glob.glob(os.path.join(r.out, "*.h5"))
    assert os.path.basename(path) == f"e2e-{socket.gethostname()}-a1-0000.h5", path
    # a template with {shard} and no --shard would let them collide: refused
    bare = subprocess.run([H5RECD, "-c", r.schema_path], capture_output=True, text=True,
                          timeout=30)
    assert bare.returncode == 2 and "give --shard NAME" in bare.stderr, bare.stderr


def big_wave(i):
    return np.resize(wave(i), 8192)


def test_message_larger_than_fetch_max_bytes_is_stored(nats, recorder):
    """fetch.max_bytes caps a fetch, not a message: records of 64 KiB of
    samples (their messages a little larger) behind a 64 KiB cap are each
    fetched on their own and stored, and the small ones after them too.
    A fetch that asked for max_bytes again and again got '409 Message Size
    Exceeds MaxBytes' forever: nothing behind the first big one arrived."""
    (server,) = nats(1)
    r = start_recorder(recorder, [server.url], max_bytes="64KiB")
    out = bytearray()
    for i in range(6):
        frame = encode_frame(DATA, key="b/wave", payload=big_wave(i).tobytes(), dtype=7,
                             seq=i + 1, t0=T0 + i * 1000, event_id=0)
        assert len(frame) > 64 * 1024
        out += struct.pack("<I", len(frame)) + frame
    p = subprocess.run([PUBLISH, "publish", server.url, SUBJECT, "big"], input=bytes(out),
                       capture_output=True, timeout=HANG_GUARD)
    assert p.returncode == 0, p.stderr
    publish(server.url, 0, 10)
    wait_for(lambda: all_acked(server, 16), "every message acknowledged", timeout=60)
    assert source_status(r)["acked"] == 16
    r.stop()
    assert sorted(read_waves(r)) == list(range(10))
    rows = []
    for path in sorted(glob.glob(os.path.join(r.out, "*.h5"))):
        with h5py.File(path, "r") as f:
            if "b/wave" in f:
                rows.extend(f["b/wave"][...])
    assert sorted(int(row[0]) for row in rows) == list(range(6))
    for row in rows:
        assert np.array_equal(row, big_wave(int(row[0])))


def test_invalid_message_is_terminated_not_redelivered(nats, recorder):
    """A message no recorder can store (a waveform of the wrong length) is
    counted and terminated; the ones around it are stored."""
    (server,) = nats(1)
    r = start_recorder(recorder, [server.url])
    bad = encode_frame(DATA, key="w/wave", payload=b"\0" * 8, dtype=7, seq=1, t0=T0)
    good = records(0, 2)
    stream = good[:len(good) // 2] + struct.pack("<I", len(bad)) + bad + good[len(good) // 2:]
    p = subprocess.run([PUBLISH, "publish", server.url, SUBJECT, "bad"], input=stream,
                       capture_output=True, timeout=HANG_GUARD)
    assert p.returncode == 0, p.stderr
    wait_for(lambda: all_acked(server, 3), "every message settled")
    src = source_status(r)
    assert src["rejected"] == 1 and src["acked"] == 2 and src["redelivered"] == 0, src
    r.stop()
    assert sorted(read_waves(r)) == [0, 1]


def test_sigterm_acks_what_was_fetched(nats, recorder):
    """SIGTERM with messages fetched and not yet stored (a slow writer):
    the recorder stops fetching, stores them, acknowledges them and exits;
    the broker is left with nothing delivered and unacknowledged (ack_wait
    is far longer than the test, so nothing was redelivered either)."""
    (server,) = nats(1)
    r = start_recorder(recorder, [server.url], args=["--test-writer-delay-us", "2000"],
                       ack_wait="10min", max_ack_pending=400)
    publish(server.url, 0, 1000)
    wait_for(lambda: source_status(r)["pending"] > 0, "messages fetched and not yet acked")
    r.stop()
    c = server.consumer()
    delivered = c["delivered"]["stream_seq"]
    assert c["num_ack_pending"] == 0 and c["ack_floor"]["stream_seq"] == delivered, c
    assert c["num_redelivered"] == 0, c
    found = read_waves(r)
    assert sorted(found) == list(range(delivered)), (len(found), delivered)


def test_event_delivered_again_is_not_given_back(nats, recorder):
    """An event (EVENT frame and its DATA frame in one message) that comes
    again after its record closed here (a lost ack makes the broker send it
    again) is counted as late data and acknowledged: the record is stored,
    and giving the message back would only bring it back here, late again."""
    (server,) = nats(1)
    r = start_recorder(recorder, [server.url])
    message = (encode_frame(EVENT, key="e", payload=b"n=7i", seq=1, t0=T0, event_id=7) +
               encode_frame(DATA, key="e/wave", payload=wave(7).tobytes(), dtype=7, seq=2,
                            t0=T0, event_id=7))
    record = struct.pack("<I", len(message)) + message
    for sender in ("first", "again"):  # two ids: the stream keeps both copies
        p = subprocess.run([PUBLISH, "publish", server.url, SUBJECT, sender], input=record,
                           capture_output=True, timeout=HANG_GUARD)
        assert p.returncode == 0, p.stderr
        wait_for(lambda: source_status(r)["acked"] == (1 if sender == "first" else 2),
                 "the message acknowledged")
    src = source_status(r)
    assert src["naked"] == 0 and src["pending"] == 0, src
    assert r.status()["counters"]["late_data"] >= 1, r.status()["counters"]
    r.stop()
    (path,) = glob.glob(os.path.join(r.out, "*.h5"))
    with h5py.File(path, "r") as f:
        assert f["e/wave"].shape == (1, 16)
        assert np.array_equal(f["e/wave"][0], wave(7))
        assert list(f["e/n"][...]) == [7]


def test_h5rec_send_publishes_records(nats, recorder, tmp_path):
    """h5rec send --nats: a message per frame outside any event; with --raw,
    a message per event (its EVENT and DATA frames together); the broker's
    acknowledgement reported, every record stored once."""
    (server,) = nats(1)
    r = start_recorder(recorder, [server.url])
    samples = tmp_path / "w.bin"
    samples.write_bytes(b"".join(wave(i).tobytes() for i in range(50)))
    sent = subprocess.run([H5REC, "send", "--nats", server.url, "--subject", SUBJECT,
                           "-k", "w/wave", "-d", "int64", "-n", "16", str(samples)],
                          capture_output=True, text=True, timeout=HANG_GUARD)
    assert sent.returncode == 0, sent.stderr
    assert "the broker acknowledged 50 messages" in sent.stdout, sent.stdout
    events = tmp_path / "events.bin"
    events.write_bytes(b"".join(
        encode_frame(EVENT, key="e", payload=b"n=%di" % i, seq=2 * i, t0=T0, event_id=i) +
        encode_frame(DATA, key="e/wave", payload=wave(i).tobytes(), dtype=7, seq=2 * i + 1,
                     t0=T0, event_id=i) for i in range(1, 4)))
    sent = subprocess.run([H5REC, "send", "--nats", server.url, "--subject", SUBJECT, "--raw",
                           str(events)], capture_output=True, text=True, timeout=HANG_GUARD)
    assert sent.returncode == 0, sent.stderr
    assert "the broker acknowledged 3 messages" in sent.stdout, sent.stdout
    wait_for(lambda: all_acked(server, 53), "every message acknowledged")
    assert source_status(r)["acked"] == 53
    r.stop()
    assert sorted(read_waves(r)) == list(range(50))
    # a group new to a live SWMR file goes into the next one
    rec = Recording(sorted(glob.glob(os.path.join(r.out, "*.h5"))))
    assert list(rec["e/n"][...]) == [1, 2, 3]
    assert [int(row[0]) for row in rec["e/wave"][...]] == [1, 2, 3]


def test_slow_writer_pauses_fetching(nats, recorder):
    """Messages of 64 KiB to a writer slowed to 20 ms an item, with
    max_buffer 1 MiB: the queue fills, fetching waits for it, and what the
    queue held never went past max_buffer by more than what was fetched
    before the pause (the hand-off's two fetches and the one in flight).
    Nothing is lost."""
    (server,) = nats(1)
    fetch_bytes = 256 * 1024
    r = start_recorder(recorder, [server.url], args=["--test-writer-delay-us", "20000"],
                       limits={"max_buffer": "1MiB", "max_frame": "1MiB"}, max_ack_pending=200,
                       max_bytes="256KiB", ack_wait="5min")
    n = 120
    out = bytearray()
    for i in range(n):
        values = np.full(8192, i, dtype="<i8")
        frame = encode_frame(DATA, key="b/wave", payload=values.tobytes(), dtype=7,
                             seq=i + 1, t0=T0 + i, event_id=0)
        out += struct.pack("<I", len(frame)) + frame
    p = subprocess.run([PUBLISH, "publish", server.url, SUBJECT, "big"], input=bytes(out),
                       capture_output=True, timeout=HANG_GUARD)
    assert p.returncode == 0, p.stderr
    wait_for(lambda: all_acked(server, n), "every message acknowledged")
    buffer = r.status()["buffer"]
    print(f"buffer: {buffer}")
    assert buffer["paused_s"] > 0, buffer  # the queue was full: back-pressure engaged
    assert buffer["peak_queued_bytes"] <= (1 << 20) + 4 * fetch_bytes, buffer
    r.stop()
    rows = Recording(sorted(glob.glob(os.path.join(r.out, "*.h5"))))["b/wave"][...]
    assert sorted(int(row[0]) for row in rows) == list(range(n))
    assert all((row == row[0]).all() for row in rows)


def test_refused_for_now_is_given_back(nats, recorder):
    """A message refused for a reason of this file (limits.max_groups: a
    new group in a full file) is given back to the broker, which delivers
    it again, not terminated as an invalid one would be: another recorder,
    or a later file, may take it."""
    (server,) = nats(1)
    r = start_recorder(recorder, [server.url], limits={"max_groups": 1})
    out = bytearray()
    for i, board in enumerate(("b1", "b2")):
        frame = encode_frame(DATA, key=f"g/{board}/wave", payload=wave(i).tobytes(), dtype=7,
                             seq=i + 1, t0=T0 + i, event_id=0)
        out += struct.pack("<I", len(frame)) + frame
    p = subprocess.run([PUBLISH, "publish", server.url, SUBJECT, "groups"], input=bytes(out),
                       capture_output=True, timeout=HANG_GUARD)
    assert p.returncode == 0, p.stderr
    wait_for(lambda: source_status(r)["redelivered"] >= 1, "the refused message delivered again")
    src = source_status(r)
    assert src["naked"] >= 1 and src["rejected"] == 0 and src["acked"] == 1, src
    assert r.status()["counters"]["group_limit"] >= 1
    r.stop()
    rec = Recording(sorted(glob.glob(os.path.join(r.out, "*.h5"))))
    assert [int(row[0]) for row in rec["g/b1/wave"][...]] == [0]
    c = server.consumer()
    assert c["ack_floor"]["stream_seq"] == 1, c  # the second is still the broker's


def test_line_source(nats, recorder, tmp_path):
    """A line source: batches of lines published with h5rec send --nats
    --raw become table rows exactly as on a line listener, a bad line
    skipped and counted, the batch acknowledged."""
    (server,) = nats(1)
    top = ("sources:\n"
           f"  - nats: {{ servers: [{server.url}], stream: L, consumer: recorders, "
           "protocol: line, precision: ms, subjects: [nl.data] }")
    r = recorder(WEATHER_STREAM, [{"protocol": "metrics", "transport": "tcp"}],
                 output={"flush": "100ms"}, top=top)
    t0_ms = T0 // 1000000
    lines = [f"weather,station=s{i % 3} temperature={i}.5 {t0_ms + i}" for i in range(12000)]
    lines.insert(6000, "weather,station=s1 temperature=oops")
    data = tmp_path / "lines.txt"
    data.write_text("\n".join(lines) + "\n")
    sent = subprocess.run([H5REC, "send", "--nats", server.url, "--subject", "nl.data", "--raw",
                           str(data)], capture_output=True, text=True, timeout=HANG_GUARD)
    assert sent.returncode == 0, sent.stderr
    def settled():
        c = server.consumer("L")
        return (c is not None and c["delivered"]["stream_seq"] > 0 and c["num_pending"] == 0
                and c["num_ack_pending"] == 0
                and c["ack_floor"]["stream_seq"] == c["delivered"]["stream_seq"])

    wait_for(settled, "the batches acknowledged")
    src = source_status(r)
    # about 500 KiB of lines: batches of whole lines, several messages
    assert src["fetched"] >= 2 and src["acked"] == src["fetched"], src
    assert src["rejected"] == 0, src
    assert r.status()["counters"]["bad_lines"] == 1
    r.stop()
    rec = Recording(sorted(glob.glob(os.path.join(r.out, "*.h5"))))
    values = sorted(float(v) for st in ("s0", "s1", "s2") for v in rec[f"{st}/temperature"][...])
    assert values == [i + 0.5 for i in range(12000)]


def test_two_recorders_one_killed_lose_nothing(nats, recorder):
    """Two recorders share the durable consumer; one is killed with
    SIGKILL mid-stream. Its unacknowledged messages go to the other after
    ack_wait: every message is in the files, and the only duplicates are
    messages the killed one had stored but not yet acknowledged."""
    (server,) = nats(1)
    first, second = 2000, 2000
    a = start_recorder(recorder, [server.url], ack_wait="3s")
    b = start_recorder(recorder, [server.url], ack_wait="3s")
    publish(server.url, 0, first)
    wait_for(lambda: source_status(a)["fetched"] > 0, "the first recorder to fetch")
    a.proc.kill()
    a.proc.wait()
    publish(server.url, first, second)
    total = first + second
    wait_for(lambda: all_acked(server, total), "every message acknowledged")
    b_status = source_status(b)
    b.stop()
    in_a, in_b = read_waves(a), read_waves(b)
    assert set(in_a) | set(in_b) == set(range(total)), "messages lost"
    duplicates = set(in_a) & set(in_b)
    # every second copy in the survivor's file came to it by a redelivery:
    # of a message the killed one had stored but not acknowledged (or, on a
    # slow machine, of one of its own whose ack came after ack_wait)
    extra_in_b = len(in_b) - len(set(in_b)) + len(duplicates)
    assert b_status["redelivered"] >= extra_in_b, (b_status, extra_in_b)
    print(f"killed recorder stored {len(in_a)}, survivor {len(in_b)}, "
          f"duplicates {len(duplicates)}, redelivered to the survivor "
          f"{b_status['redelivered']}")


def test_r3_cluster_server_killed_loses_nothing(nats, recorder):
    """A three-server JetStream cluster with the stream on three replicas;
    the stream's leader is killed with SIGKILL mid-stream. The publisher
    sends again what was not acknowledged, the recorder fetches from the new
    leader: every message is in the file."""
    servers = nats(3)
    urls = [s.url for s in servers]
    made = subprocess.run([PUBLISH, "stream", ",".join(urls), "S", SUBJECT, "3"],
                          capture_output=True, timeout=HANG_GUARD)
    assert made.returncode == 0, made.stderr
    r = start_recorder(recorder, urls, subjects=False, ack_wait="3s")
    first, second = 1500, 1500
    publish(",".join(urls), 0, first)
    wait_for(lambda: source_status(r)["acked"] > 0, "the recorder to store some")

    def leader():
        for s in servers:
            try:
                data = s.jsz("streams=true")
            except OSError:
                continue
            for account in data.get("account_details", []):
                for st in account.get("stream_detail", []):
                    if st["name"] == "S" and st.get("cluster", {}).get("leader"):
                        return st["cluster"]["leader"]
        return None

    name = wait_for(leader, "a stream leader")
    victim = next(s for s in servers if s.name == name)
    victim.kill()
    survivors = [s for s in servers if s is not victim]
    publish(",".join(s.url for s in survivors), first, second)
    total = first + second
    wait_for(lambda: any(all_acked(s, total) for s in survivors), "every message acknowledged")
    r.stop()
    found = read_waves(r)
    assert set(found) == set(range(total)), "messages lost"
    print(f"stored {len(found)} rows for {total} messages "
          f"({len(found) - len(set(found))} duplicates)")
