"""Operations: the control socket (status, flush, roll), signals, sd_notify,
and `h5rec info` on closed, live and family files — against a running h5recd
on loopback, with the real client."""
import json
import re
import os
import signal
import socket
import subprocess
import threading
import time

import h5py
import pytest

H5RECD = os.environ.get("H5RECD", "build/src/h5recd")
H5REC = os.environ.get("H5REC", "build/src/h5rec")
PLUGIN_DIR = os.environ.get("H5REC_PLUGIN_DIR", "build/plugins")
T0 = 1700000000_000000000


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def unix_open(path):
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(0.2)
            s.connect(path)
        return True
    except OSError:
        return False


class Recorder:
    """One h5recd with a schema of a line and a frame listener."""

    def __init__(self, tmp, control=True, extra_env=None, output=None, streams=None,
                 limits=None):
        self.tmp = tmp
        self.line_port = free_port()
        self.frame_port = free_port()
        self.udp_frame_port = free_port(socket.SOCK_DGRAM)
        self.socket = str(tmp / "control.sock")
        self.out = tmp / "data"
        self.schema = tmp / "ops.yaml"
        control_line = 'control: { socket: "%s" }\n' % self.socket if control else ""
        self.schema.write_text(
            "name: ops\n" + control_line +
            "output: " + (output or '{ directory: "%s", file: "ops-{seq}.h5", flush: 200ms }'
                          % self.out) + "\n"
            + ("limits: %s\n" % limits if limits else "") +
            "listen:\n"
            '  - { protocol: line, transport: tcp, address: "127.0.0.1:%d" }\n'
            '  - { protocol: frame, transport: tcp, address: "127.0.0.1:%d" }\n'
            '  - { protocol: frame, transport: udp, address: "127.0.0.1:%d" }\n'
            % (self.line_port, self.frame_port, self.udp_frame_port) +
            "streams:\n" + (streams or
            "  - name: weather\n"
            "    match: { measurement: weather }\n"
            '    group: "/{station}"\n'
            "    layout: table\n"
            "    defaults: { dtype: float32 }\n"
            "    channels: { temperature: {}, wind: {}, pressure: {}, humidity: {} }\n"
            "  - name: adc\n"
            '    match: { key: "{board}/{channel}" }\n'
            '    group: "/{board}"\n'
            "    layout: stream\n"
            "    defaults: { dtype: int16, dt: 1.0e-6, chunk: 4096 }\n"
            "    channels: { adc0: {}, adc1: {} }\n"))
        env = dict(os.environ, **(extra_env or {}))
        self.log_path = tmp / "h5recd.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([H5RECD, "-c", str(self.schema), "-l", "debug", "-g", "300"],
                                     stderr=self.log, env=env, cwd=tmp)
        wait_for(lambda: port_open(self.frame_port) or self.proc.poll() is not None,
                 what="h5recd to listen")
        # the control socket is opened after the listeners: a test that
        # talks to it at once must not find it bound and not yet listening
        if control:
            wait_for(lambda: unix_open(self.socket) or self.proc.poll() is not None,
                     what="h5recd's control socket")
        assert self.proc.poll() is None, self.log_text()

    def log_text(self):
        return self.log_path.read_text()

    def h5rec(self, *args, check=True, env=None):
        result = subprocess.run([H5REC, *args], capture_output=True, text=True, timeout=120,
                                env=dict(os.environ, **(env or {})))
        if check:
            assert result.returncode == 0, result.stderr
        return result

    def status(self):
        return json.loads(self.h5rec("status", "--socket", self.socket, "--json").stdout)

    def files(self):
        return sorted(str(p) for p in self.out.rglob("*.h5"))

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=60)
        self.log.close()
        assert rc == 0, self.log_text()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def recorder(tmp_path):
    made = []

    def make(tmp=None, **kwargs):
        r = Recorder(tmp or tmp_path, **kwargs)
        made.append(r)
        return r

    yield make
    for r in made:
        r.kill()


def send_lines(rec, count, stations=5):
    rec.h5rec("simulate", "weather", "--to", "tcp:127.0.0.1:%d" % rec.line_port, "--count",
              str(count), "--stations", str(stations), "--rate", "0", "--t0", str(T0))


def test_buffers_too_small_are_write_errors_not_a_stall(recorder):
    """The engine refuses data (-ENOBUFS) because limits.max_buffer is too
    small for the chunk buffers open at once (2,000 stations, a buffer of
    256 bytes or more per dataset), not for want of disk space: the refused
    rows are write errors,
    and the writer does not stall waiting for space that is not missing
    (h5rec flush still answers; the output stays "ok")."""
    rec = recorder(limits="{ max_buffer: 1MiB, max_frame: 64KiB }", streams=(
        "  - name: weather\n"
        "    match: { measurement: weather }\n"
        '    group: "/{station}"\n'
        "    layout: table\n"
        "    defaults: { dtype: float32, chunk: 65536 }\n"
        "    channels: { temperature: {}, wind: {}, pressure: {}, humidity: {} }\n"
        "  - name: adc\n"
        '    match: { key: "{board}/{channel}" }\n'
        '    group: "/{board}"\n'
        "    layout: stream\n"
        "    channels: { adc0: { dtype: int16, dt: 1.0e-6 } }\n"))
    send_lines(rec, 2000, stations=2000)
    wait_for(lambda: rec.status()["counters"]["lines"] == 2000, what="2000 lines")
    assert rec.h5rec("flush", "--socket", rec.socket).stdout == "flushed\n"
    st = rec.status()
    assert st["counters"]["write_errors"] > 0, st["counters"]
    assert st["output"]["state"] == "ok" and st["output"]["stalled_s"] == 0, st["output"]
    assert "limits.max_buffer" in rec.log_text()
    rec.stop()


def send_samples(rec, tmp, key, samples, per_frame):
    data = tmp / ("%s.bin" % key.replace("/", "_"))
    data.write_bytes(bytes(range(256)) * (samples * 2 // 256))
    return rec.h5rec("send", "--to", "tcp:127.0.0.1:%d" % rec.frame_port, "--key", key,
                     "--dtype", "int16", "--samples-per-frame", str(per_frame), str(data))


def test_status_figures_match_what_was_sent(recorder, tmp_path):
    rec = recorder()
    send_lines(rec, 1200, stations=6)
    send_samples(rec, tmp_path, "b1/adc0", 8192, 1024)  # 8 frames + HELLO
    with socket.create_connection(("127.0.0.1", rec.line_port)) as s:
        s.sendall(b"weather,station=1 temperature=oops\nrain,station=1 x=1\n")
    wait_for(lambda: rec.status()["counters"]["bad_lines"] == 1, what="the bad line counted")

    st = rec.status()
    assert st["schema"] == "ops"
    assert st["accepting"] is True
    c = st["counters"]
    assert c["lines"] == 1201  # 1200 good + the unknown measurement
    assert c["frames"] == 9
    assert c["samples"] == 1200 * 4 + 8192
    assert c["unknown_streams"] == 1
    assert c["bad_lines"] == 1
    streams = {s["name"]: s["samples"] for s in st["streams"]}
    assert streams == {"weather": 4800, "adc": 8192}
    line, frame, _ = st["listeners"]
    assert (line["protocol"], frame["protocol"]) == ("line", "frame")
    assert line["connections_accepted"] == 2
    assert frame["connections_accepted"] == 2  # the fixture's readiness probe, then send
    assert frame["bytes"] >= 8192 * 2
    assert st["buffer"]["max_buffer"] == 512 * 1024 * 1024

    text = rec.h5rec("status", "--socket", rec.socket).stdout
    assert "schema ops" in text
    assert "totals: 1201 lines, 9 frames, 12992 samples" in text
    assert "bad_lines 1" in text and "unknown_streams 1" in text
    assert "127.0.0.1:%d" % rec.frame_port in text
    rec.stop()


def test_flush_makes_data_visible_to_a_swmr_reader(recorder, tmp_path):
    rec = recorder(output='{ directory: "%s", file: "ops-{seq}.h5", flush: 1h }'
                   % (tmp_path / "data"))
    send_lines(rec, 500, stations=2)
    wait_for(lambda: rec.status()["counters"]["lines"] == 500, what="lines received")
    assert rec.h5rec("flush", "--socket", rec.socket).stdout == "flushed\n"
    assert rec.status()["last_flush"] != ""
    (path,) = rec.files()
    with h5py.File(path, "r", libver="latest", swmr=True) as f:
        rows = sum(f[g]["time"].shape[0] for g in f)
        assert rows == 500
    rec.stop()


def test_roll_and_sighup_start_new_files(recorder, tmp_path):
    rec = recorder()
    send_lines(rec, 100, stations=1)
    wait_for(lambda: rec.status()["counters"]["lines"] == 100, what="lines received")
    assert rec.h5rec("roll", "--socket", rec.socket).stdout == "rolled\n"
    assert rec.status()["file"]["files_closed"] == 1
    first = rec.files()
    assert len(first) == 1
    with h5py.File(first[0], "r") as f:  # closed: opens without SWMR
        assert f["1/time"].shape == (100,)

    send_lines(rec, 50, stations=1)
    wait_for(lambda: len(rec.files()) == 2, what="a second file")
    rec.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: rec.status()["file"]["files_closed"] == 2, what="SIGHUP to roll")
    send_lines(rec, 25, stations=1)
    rec.stop()
    files = rec.files()
    assert len(files) == 3
    rows = []
    for path in files:
        with h5py.File(path, "r") as f:
            rows.append(f["1/time"].shape[0])
    assert sorted(rows) == [25, 50, 100]
    assert "SIGHUP: rolling" in rec.log_text()


def test_roll_and_flush_answered_with_nothing_recorded(recorder):
    # With no file open the writer applies a roll or flush, and frees it, at
    # once: the control socket must not look at the request once queued.
    # The ASan build caught it reading the freed item for its number.
    rec = recorder()
    for _ in range(5):
        assert rec.h5rec("roll", "--socket", rec.socket).stdout == "rolled\n"
        assert rec.h5rec("flush", "--socket", rec.socket).stdout == "flushed\n"
    rec.stop()
    assert rec.files() == []


def test_control_socket_found_from_the_schema(recorder, tmp_path):
    runtime = tmp_path / "xdg"
    runtime.mkdir(mode=0o700)
    env = {"XDG_RUNTIME_DIR": str(runtime)}
    rec = recorder(control=False, extra_env=env)
    path = runtime / "h5rec-ops.sock"
    if os.access("/run/h5rec", os.W_OK):
        pytest.skip("/run/h5rec is writable here: the socket goes there first")
    wait_for(path.exists, what="the socket in XDG_RUNTIME_DIR")
    assert oct(path.stat().st_mode & 0o777) == "0o660"
    out = rec.h5rec("status", "-c", str(rec.schema), env=env).stdout
    assert "schema ops" in out
    bad = rec.h5rec("status", "--socket", str(tmp_path / "nothing.sock"), check=False)
    assert bad.returncode == 1 and "no recorder at" in bad.stderr
    rec.stop()
    assert not path.exists()  # removed on a clean stop


def test_status_finds_the_one_recorder(recorder, tmp_path):
    """Without -c or --socket, status talks to the one recorder whose socket
    is in a default place; when there are several it names them."""
    runtime = tmp_path / "xdg"
    runtime.mkdir(mode=0o700)
    env = {"XDG_RUNTIME_DIR": str(runtime)}
    rec = recorder(control=False, extra_env=env)
    if os.access("/run/h5rec", os.W_OK):
        pytest.skip("/run/h5rec is writable here: the socket goes there first")
    path = runtime / "h5rec-ops.sock"
    wait_for(path.exists, what="the socket in XDG_RUNTIME_DIR")
    res = rec.h5rec("status", env=env, check=False)
    # recorders of tests running beside this one may have sockets in
    # /tmp/h5rec-UID: then ours is among those named
    if res.returncode == 2:
        assert "recorders are running; name one with -c SCHEMA or --socket PATH" in res.stderr
        assert f"--socket {path}\n" in res.stderr, res.stderr
    else:
        assert res.returncode == 0 and "schema ops" in res.stdout, res
        assert rec.h5rec("flush", env=env).stdout == "flushed\n"
    rec.stop()
    gone = rec.h5rec("status", env=env, check=False)
    assert str(path) not in gone.stdout + gone.stderr
    if gone.returncode == 1:
        assert "no running recorder found in /run/h5rec, $XDG_RUNTIME_DIR or /tmp/h5rec-" \
            in gone.stderr


def test_status_groups_longest_silent_first(recorder):
    rec = recorder()
    for station, count in (("old", 3), ("mid", 1), ("new", 2)):
        with socket.create_connection(("127.0.0.1", rec.line_port), timeout=5) as s:
            s.sendall("".join(f"weather,station={station} temperature={i} {T0 + i}\n"
                              for i in range(count)).encode())
        wait_for(lambda: any(g["group"] == f"/{station}" for g in json.loads(
            rec.h5rec("status", "--groups", "--json", "--socket", rec.socket).stdout)["groups"]),
            what=station)
        time.sleep(0.05)  # a later arrival, at the loop's millisecond clock
    groups = json.loads(rec.h5rec("status", "--groups", "--json", "--socket",
                                  rec.socket).stdout)["groups"]
    assert [g["group"] for g in groups] == ["/old", "/mid", "/new"], groups
    assert [g["points"] for g in groups] == [3, 1, 2]
    assert {g["stream"] for g in groups} == {"weather"}
    assert groups[0]["age_s"] >= groups[1]["age_s"] >= groups[2]["age_s"] >= 0
    assert all(g["last_seen"].startswith("20") for g in groups)
    text = rec.h5rec("status", "--groups", "--socket", rec.socket).stdout
    lines = text.splitlines()
    assert lines[0] == "3 groups, the longest silent first:"
    assert lines[2].endswith(" 3  /old (weather)") and lines[4].endswith(" 2  /new (weather)")
    bad = rec.h5rec("flush", "--groups", "--socket", rec.socket, check=False)
    assert bad.returncode == 2
    rec.stop()


def test_sd_notify_ready_status_watchdog_stopping(recorder, tmp_path):
    notify_path = str(tmp_path / "notify.sock")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(5)
    rec = recorder(extra_env={"NOTIFY_SOCKET": notify_path, "WATCHDOG_USEC": "400000"})
    messages = []

    def receive_until(prefix):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            msg = notify.recv(4096).decode()
            messages.append(msg)
            if msg.startswith(prefix):
                return msg
        raise AssertionError("no %s in %r" % (prefix, messages))

    receive_until("READY=1")
    # READY comes only once the listeners are bound.
    assert port_open(rec.line_port) and port_open(rec.frame_port)
    receive_until("WATCHDOG=1")
    receive_until("WATCHDOG=1")  # periodically, not once
    status = receive_until("STATUS=")
    assert "samples/s" in status and "buffer" in status
    rec.stop()
    receive_until("STOPPING=1")
    notify.close()


def test_info_on_live_closed_and_family_files(recorder, tmp_path):
    rec = recorder()
    send_lines(rec, 300, stations=3)
    rec.h5rec("flush", "--socket", rec.socket)
    (path,) = rec.files()
    live = rec.h5rec("info", path).stdout
    assert "schema ops" in live and "bytes, still marked as open for writing: being " \
        "written now, or its writer stopped without closing it" in live
    assert "/1/temperature" in live and "2023-11-14T22:13:20" in live  # the time span
    # 100 rows in a chunk of 4096: no compression ratio that would mislead
    assert re.search(r"/1/temperature .* ratio n/a \(one partly filled chunk\)", live), live
    rec.stop()
    assert f"{path}: " in rec.h5rec("info", path).stdout.splitlines()[0]
    assert rec.h5rec("info", path).stdout.splitlines()[0].endswith(" bytes, closed cleanly")
    closed = json.loads(rec.h5rec("info", "--json", path).stdout)
    assert closed["state"] == "closed" and closed["opened"] == "swmr-read"
    rows = {d["name"]: d["shape"][0] for d in closed["datasets"]}
    assert sum(v for k, v in rows.items() if k.endswith("/time")) == 300

    family_dir = tmp_path / "family"
    fam_work = tmp_path / "fam"
    fam_work.mkdir()
    fam = Recorder(
        fam_work,
        output='{ directory: "%s", file: "fam-{seq}-{member}.h5", driver: family, '
               'member_size: 1MiB, flush: 1s }' % family_dir)
    try:
        send_samples(fam, tmp_path, "b1/adc0", 2 * 1024 * 1024, 65536)  # 4 MiB of int16
        fam.stop()
    finally:
        fam.kill()
    members = sorted(str(p) for p in family_dir.rglob("*.h5"))
    assert len(members) >= 4
    info = json.loads(fam.h5rec("info", "--json", members[0]).stdout)
    assert info["opened"] == "family" and "%d" in info["file"]
    assert info["state"] == "closed"
    shapes = {d["name"]: d["shape"] for d in info["datasets"]}
    assert shapes["/b1/adc0"] == [2 * 1024 * 1024]
    with h5py.File(info["file"], "r", driver="family", memb_size=0) as f:
        assert f["b1/adc0"].shape == (2 * 1024 * 1024,)


def udp_frame(seq, key, samples):
    """A DATA frame without CRC trailer (SPEC §3.1), int16 samples."""
    import struct
    payload = struct.pack("<%dh" % len(samples), *samples)
    header = struct.pack("<4sBBBBHHIQqQ", b"H5RF", 1, 1, 3, 0, len(key), 0, len(payload),
                         seq, T0 + seq, 0)
    return header + key + payload


def test_udp_frame_senders_seq_gaps_are_counted(recorder):
    rec = recorder()
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    target = ("127.0.0.1", rec.udp_frame_port)
    for seq in (1, 2, 5, 6, 10):  # sender a loses 3,4 and 7,8,9
        a.sendto(udp_frame(seq, b"b1/adc0", [seq] * 4), target)
    for seq in (100, 101, 102):   # sender b, its own baseline, loses nothing
        b.sendto(udp_frame(seq, b"b2/adc0", [seq] * 4), target)
    wait_for(lambda: rec.status()["counters"]["frames"] == 8, what="8 datagrams")
    counters = rec.status()["counters"]
    assert counters["lost_frames"] == 5
    assert counters["samples"] == 32
    rec.stop()
    (path,) = rec.files()
    with h5py.File(path, "r") as f:
        assert list(f["b1/adc0_frame_seq"][:]) == [1, 2, 5, 6, 10]
        assert list(f["b2/adc0"][:]) == [100] * 4 + [101] * 4 + [102] * 4


def test_refuses_to_start_when_the_output_cannot_be_written(tmp_path):
    """A recorder that could not write must not accept data it would lose."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    schema = tmp_path / "bad.yaml"
    schema.write_text(
        "name: bad\n"
        'output: { directory: "%s/sub" }\n' % blocker +
        'listen: [ { protocol: line, transport: tcp, address: "127.0.0.1:%d" } ]\n' % free_port() +
        "streams:\n"
        "  - name: w\n"
        "    match: { measurement: w }\n"
        "    channels: { a: {} }\n")
    result = subprocess.run([H5RECD, "-c", str(schema)], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 1
    assert "output directory %s/sub cannot be written: Not a directory" % blocker in result.stderr
    assert "recording" not in result.stderr


def test_version_flags():
    """`h5rec -V` works as `h5rec --version` does, as it does for h5recd."""
    out = {args: subprocess.run([*args], capture_output=True, text=True, timeout=30)
           for args in ((H5REC, "-V"), (H5REC, "--version"), (H5RECD, "-V"))}
    assert all(r.returncode == 0 for r in out.values()), out
    assert out[(H5REC, "-V")].stdout == out[(H5REC, "--version")].stdout
    assert out[(H5REC, "-V")].stdout.startswith("h5rec ")
    assert out[(H5RECD, "-V")].stdout.split()[-1] == out[(H5REC, "-V")].stdout.split()[-1]


def control_request(path, request):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(30)
        s.connect(path)
        s.sendall(request.encode() + b"\n")
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    return reply.decode()


def test_status_is_whole_while_the_writer_changes_it(recorder, tmp_path):
    # The writer thread updates what status shows (its first file, the
    # first flush, counters gaining digits) while the loop renders it:
    # every reply must be the whole document, however its length changed
    # meanwhile. The biggest change comes with a recorder's first flush
    # (the file name and last_flush appear), so ask without pause from
    # several connections while the first line of a new recorder is
    # stored, and do that with many recorders.
    replies = 0
    for run in range(25):
        tmp = tmp_path / ("r%d" % run)
        tmp.mkdir()
        rec = recorder(tmp=tmp, output='{ directory: "%s", file: "ops-{seq}.h5", flush: 1ms }'
                       % (tmp / "data"))
        stop = threading.Event()
        flushed = threading.Event()
        bad = []
        counts = []

        def ask(request):
            n = 0
            while not stop.is_set():
                text = control_request(rec.socket, request)
                n += 1
                try:
                    doc = json.loads(text)
                except ValueError:
                    bad.append((request, text[-120:]))
                    continue
                if request == "status json" and doc.get("last_flush"):
                    flushed.set()
            counts.append(n)

        askers = [threading.Thread(target=ask, args=(request,))
                  for request in ("status json", "status json", "status groups json")]
        for t in askers:
            t.start()
        try:
            time.sleep(0.05)
            with socket.create_connection(("127.0.0.1", rec.line_port)) as s:
                s.sendall(b"".join(b"weather,station=s%d temperature=%d %d\n" % (j, j, T0 + j)
                                   for j in range(50)))
                assert flushed.wait(30), "no flush seen in status"
            time.sleep(0.02)
        finally:
            stop.set()
            for t in askers:
                t.join()
        rec.stop()
        assert not bad, "replies that are not whole JSON: %r" % bad[:3]
        replies += sum(counts)
    assert replies >= 25 * 3
