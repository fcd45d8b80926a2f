"""Reliability: a full disk (issue: "a clear error in the log and in
`h5rec status`, no crash, closed files valid, TCP senders held by
back-pressure rather than data dropped silently, and ingest resumes into a
new file when space returns"; SPEC §6).

The output directory is a tmpfs the test mounts (root) holding a ballast
file, so that about 8 MiB are free; the schema keeps
output.min_free = 2 MiB of it free and allows limits.max_buffer = 4 MiB.
Where mounting is not permitted (a container), the fallback is
RLIMIT_FSIZE = 8 MiB on the daemon with SIGXFSZ ignored in the child (so the
limit gives EFBIG instead of killing it; that the daemon does not ignore
SIGXFSZ itself is pinned by test_file_size_limit_does_not_kill_the_daemon);
H5REC_DISKFULL_RLIMIT=1 forces the fallback. The tmpfs is always unmounted
in teardown.

One scenario runs once per module (fixture `episode`), and each test checks
one guarantee against what it recorded:

  1. a small line stream, then `h5rec roll`: a file closed before the disk
     fills (its sha256 is taken);
  2. 48 MiB of int16 samples, plus twice what the kernel's socket buffers
     can hold (FILL_SAMPLES), with `h5rec send` (ACKs, --tee, 64 Ki samples
     per frame = one chunk) through the ACK-recording relay, and a weather
     line stream at the same time: far more than fits, and more than the
     recorder's buffers and the sockets between can hold;
  3. once the status says the writer stalled, the relay's byte count is
     watched for 2 s (the sender must be held: no byte moves, the sender
     still runs), and the status and the log are sampled;
  4. space returns (ballast deleted / limit lifted): both senders must
     finish, with every frame ACKed as durable; the filled file is closed
     and ingest goes on in a new file; then `h5rec roll` and a 1 MiB send
     with ACKs: it must land, exactly, in a file of its own;
  5. SIGTERM: exit 0; every file opens as it is (no h5clear), and the files
     hold every frame and every line sent, exactly once.
"""
import errno
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from reliability_helpers import (DATA, H5REC, AckRelay, Daemon, free_port,  # noqa: E402
                                 parse_frames_prefix, sha256, wait_for)
from recorder_fixture import DTYPE_CODES, FLAG_ACK, encode_frame  # noqa: E402

import h5py  # noqa: E402

T0 = 1767225600000000000
FSIZE_LIMIT = 8 << 20
PER_FRAME = 65536                        # samples per frame = one chunk


def kernel_socket_buffers():
    """The most a stalled connection's socket buffers can hold: the
    recorder's receive buffer and the relay's send buffer grow (autotuning)
    up to tcp_rmem's and tcp_wmem's maximum, 6 and 4 MiB by default but 32
    MiB on some machines."""
    total = 0
    for name in ("tcp_rmem", "tcp_wmem"):
        try:
            with open("/proc/sys/net/ipv4/" + name) as f:
                total += int(f.read().split()[2])
        except (OSError, ValueError, IndexError):
            total += 32 << 20
    return total


# Far more than fits: the 8 MiB free, the recorder's 4 MiB buffer, and
# whatever the sockets between can hold, twice over.
FILL_SAMPLES = ((48 << 20) + 2 * kernel_socket_buffers()) // 2 // PER_FRAME * PER_FRAME
# The disk takes it all once the ballast is gone: 8 MiB free until then.
BALLAST_MIB = FILL_SAMPLES * 2 // (1 << 20) + 32
DISK_MIB = BALLAST_MIB + 8
FILL_LINES = 6000
AFTER_SAMPLES = 512 << 10                # 1 MiB sent after the roll
STOP_WAIT_S = 10                         # WRITER_STOP_WAIT_MS (src/daemon/writer.h)

SCHEMA = """\
name: full
output: {{ directory: "{out}", file: "full-{{seq}}.h5", flush: 1s, min_free: {min_free} }}
control: {{ socket: "{control}" }}
limits: {{ max_buffer: 4MiB, max_frame: 1MiB }}
listen:
  - {{ protocol: frame, transport: tcp, address: "127.0.0.1:{frame_port}" }}
  - {{ protocol: line, transport: tcp, address: "127.0.0.1:{line_port}" }}
streams:
  - name: adc
    match: {{ key: "{{board}}/{{channel}}" }}
    group: "/{{board}}"
    layout: stream
    defaults: {{ dtype: int16, dt: 1.0e-6, chunk: 65536 }}
    channels: {{ adc0: {{}} }}
  - name: weather
    match: {{ measurement: weather }}
    group: "/station_{{station}}"
    layout: table
    defaults: {{ dtype: float32, chunk: 1024 }}
    channels: {{ temperature: {{}}, wind: {{}}, pressure: {{}}, humidity: {{}} }}
"""


def frame_only(schema):
    """SCHEMA without the line listener and the weather stream."""
    return schema.split("  - name: weather")[0].replace(
        "  - {{ protocol: line, transport: tcp, address: \"127.0.0.1:{line_port}\" }}\n", "")


# ---- the small disk --------------------------------------------------------------------


class SmallDisk:
    """A tmpfs with 8 MiB free beside a ballast, or the RLIMIT_FSIZE fallback."""

    def __init__(self, path):
        self.path = str(path)
        os.makedirs(self.path, exist_ok=True)
        if os.environ.get("H5REC_DISKFULL_RLIMIT"):  # exercise the fallback
            res = subprocess.CompletedProcess([], 1, "", "H5REC_DISKFULL_RLIMIT is set")
        else:
            res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_MIB}m", "tmpfs",
                                  self.path], capture_output=True, text=True)
        self.mounted = res.returncode == 0
        self.mode = "tmpfs" if self.mounted else "rlimit"
        self.mount_error = res.stderr.strip()
        self.ballast = os.path.join(self.path, "ballast")
        if self.mounted:
            with open(self.ballast, "wb") as f:
                f.write(b"\0" * (BALLAST_MIB << 20))
        self.pid = None

    def preexec(self):
        """For the daemon, in the rlimit fallback only."""
        if self.mounted:
            return None

        def limit():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE_LIMIT, resource.RLIM_INFINITY))
        return limit

    def free_space(self):
        if self.mounted:
            for path in (self.ballast, self.filler):
                if os.path.exists(path):
                    os.unlink(path)
        else:
            resource.prlimit(self.pid, resource.RLIMIT_FSIZE,
                             (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    @property
    def filler(self):
        return os.path.join(self.path, "filler")

    def fill_up(self, growing_file):
        """Leave no byte free (tmpfs: a filler file written until ENOSPC;
        rlimit: the limit set to GROWING_FILE's present size)."""
        if not self.mounted:
            resource.prlimit(self.pid, resource.RLIMIT_FSIZE,
                             (os.path.getsize(growing_file), resource.RLIM_INFINITY))
            return
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"\1" * 4096)
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
        finally:
            os.close(fd)

    def close(self):
        if self.mounted:
            res = subprocess.run(["umount", self.path], capture_output=True, text=True)
            if res.returncode != 0:
                subprocess.run(["umount", "-l", self.path], capture_output=True)
            self.mounted = False


def send(args, timeout=60):
    return subprocess.run([H5REC] + [str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout)


def start(args):
    return subprocess.Popen([H5REC] + [str(a) for a in args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def file_frames(path, group="b0", channel="adc0"):
    """[(seq, t0, samples)] of the channel's frames in the file, in order;
    the frame index must account for every sample stored, exactly."""
    with h5py.File(path, "r") as f:
        if group not in f:
            return []
        g = f[group]
        seqs = g[f"{channel}_frame_seq"][...]
        starts = g[f"{channel}_frame_start"][...]
        times = g[f"{channel}_frame_time"][...]
        data = g[channel][...]
    ends = starts + PER_FRAME
    assert list(starts) == [k * PER_FRAME for k in range(len(starts))], \
        f"{path}: frame index starts {list(starts)}"
    assert len(data) == len(starts) * PER_FRAME, \
        f"{path}: {len(data)} samples, the frame index accounts for {len(starts)} frames"
    return [(int(q), int(t), data[a:b]) for q, t, a, b in zip(seqs, times, starts, ends)]


def station_rows(path):
    with h5py.File(path, "r") as f:
        return sum(f[g]["time"].shape[0] for g in f if g.startswith("station_"))


def settle(value, period=0.5, timeout=20):
    """Seconds until VALUE() stayed the same over one PERIOD."""
    t0 = time.monotonic()
    last = value()
    while time.monotonic() - t0 < timeout:
        time.sleep(period)
        now = value()
        if now == last:
            return time.monotonic() - t0
        last = now
    raise AssertionError(f"still moving after {timeout} s")


def data_frames(frames):
    return [f for f in frames if f.type == DATA]


def frame_recorder(tmp, min_free):
    """A small disk in TMP and a frame-only recorder writing to it (not yet
    started): (disk, daemon, output directory, frame port)."""
    disk = SmallDisk(tmp / "disk")
    out = os.path.join(disk.path, "out")
    frame_port = free_port()
    control = str(tmp / "control.sock")
    daemon = Daemon(tmp, frame_only(SCHEMA).format(out=out, control=control,
                                                   frame_port=frame_port, min_free=min_free),
                    control, ports=(frame_port,), preexec_fn=disk.preexec())
    return disk, daemon, out, frame_port


# ---- the episode -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def episode(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("diskfull")
    disk = SmallDisk(tmp / "disk")
    ep = {"mode": disk.mode, "mount_error": disk.mount_error, "tmp": tmp}
    out = os.path.join(disk.path, "out")
    frame_port, line_port = free_port(), free_port()
    control = str(tmp / "control.sock")
    daemon = Daemon(tmp, SCHEMA.format(out=out, control=control, frame_port=frame_port,
                                       line_port=line_port, min_free="2MiB"),
                    control, ports=(frame_port, line_port), preexec_fn=disk.preexec())
    relay = sender = lines = None
    # a stand-in for systemd's notify socket: the STATUS line names the full disk
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp / "notify.sock"))
    notify.setblocking(False)
    try:
        os.environ["NOTIFY_SOCKET"] = str(tmp / "notify.sock")
        try:
            daemon.start()
        finally:
            del os.environ["NOTIFY_SOCKET"]
        disk.pid = daemon.proc.pid
        ep["daemon"] = daemon

        # 1. a file closed while there is space
        res = send(["simulate", "weather", "-c", daemon.schema_path, "--count", 500,
                    "--rate", 0, "--stations", 3, "--t0", T0])
        assert res.returncode == 0, res.stderr
        wait_for(lambda: daemon.status()["counters"]["lines"] == 500, what="500 lines")
        assert daemon.h5rec("roll", "--socket", control).stdout == "rolled\n"
        (first,) = sorted(os.listdir(out))
        ep["closed_before"] = os.path.join(out, first)
        ep["closed_before_sha"] = sha256(ep["closed_before"])

        # 2. fill the disk: frames with ACKs through the relay, lines alongside
        samples = (np.arange(FILL_SAMPLES, dtype=np.int64) % 30011 - 15000).astype(np.int16)
        big = tmp / "fill.bin"
        samples.tofile(big)
        relay = AckRelay(frame_port)
        tee = tmp / "fill-tee.bin"
        sender = start(["send", "--to", relay.address, "-k", "b0/adc0", "-d", "int16",
                        "-n", PER_FRAME, "--t0", T0, "--dt", "1e-6", "--tee", tee, big])
        lines = start(["simulate", "weather", "-c", daemon.schema_path, "--count",
                       FILL_LINES, "--rate", 3000, "--stations", 3,
                       "--t0", T0 + 3600 * 10**9])

        # 3. the writer stalls; the sender must be held, not dropped
        ep["status_stalled"] = wait_for(
            lambda: (lambda st: st if st["output"]["stalled"] and st["buffer"]["reading_paused"]
                     else None)(daemon.status()), timeout=30, what="the writer to stall")
        # the kernel's socket buffers still take what they can: wait until
        # the bytes stop moving, then watch them stand still for 2 s
        ep["settle_seconds"] = settle(lambda: relay.forwarded)
        held_from = relay.forwarded
        time.sleep(2.0)
        ep["held"] = (held_from, relay.forwarded, sender.poll(), lines.poll())
        ep["alive_when_full"] = daemon.running()
        ep["status_full"] = daemon.status()
        ep["fill_file"] = ep["status_full"]["file"]["name"]
        ep["log_full"] = daemon.log()
        ep["notify_stalled"] = drain_datagrams(notify)

        # 4. space returns: everything sent is taken, the filled file closes
        t_free = time.monotonic()
        disk.free_space()
        ep["sender_out"] = sender.communicate(timeout=120)
        ep["sender_rc"] = sender.returncode
        ep["lines_out"] = lines.communicate(timeout=60)
        ep["lines_rc"] = lines.returncode
        ep["resume_seconds"] = time.monotonic() - t_free
        wait_for(lambda: daemon.status()["counters"]["lines"] == 500 + FILL_LINES,
                 timeout=30, what="every line")
        ep["status_resumed"] = daemon.status()
        relay.close()
        ep["acked"] = relay.acked_seq() or 0
        ep["fill_frames"] = data_frames(parse_frames_prefix(tee.read_bytes())[0])
        ep["forwarded"] = relay.forwarded

        # ... and after a roll, new data lands in a new file
        ep["roll_reply"] = daemon.h5rec("roll", "--socket", control, check=False)
        after = tmp / "after.bin"
        samples[:AFTER_SAMPLES].tofile(after)
        ep["after_send"] = send(["send", "-c", daemon.schema_path, "-k", "b1/adc0", "-d",
                                 "int16", "-n", PER_FRAME, "--t0", T0 + 7200 * 10**9,
                                 "--dt", "1e-6", "--tee", tmp / "after-tee.bin", after])
        ep["after_frames"] = data_frames(
            parse_frames_prefix((tmp / "after-tee.bin").read_bytes())[0])
        ep["status_after"] = daemon.status()

        # 5. stop
        ep["exit"] = daemon.stop()
        ep["log"] = daemon.log()
        ep["files"] = sorted(os.path.join(out, p) for p in os.listdir(out))
        ep["hashes"] = {p: sha256(p) for p in ep["files"]}
        ep["file_copies"] = []
        for p in ep["files"]:  # keep copies: the tmpfs goes away in teardown
            copy = tmp / ("copy-" + os.path.basename(p))
            subprocess.run(["cp", p, str(copy)], check=True)
            ep["file_copies"].append(str(copy))
        report(ep)
        yield ep
    finally:
        for proc in (sender, lines):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate()
        if relay is not None:
            relay.close()
        daemon.kill()
        disk.close()
        notify.close()


def drain_datagrams(sock):
    """The datagrams waiting on a non-blocking socket, decoded."""
    got = []
    while True:
        try:
            got.append(sock.recv(4096).decode())
        except BlockingIOError:
            return got


def copy_of(ep, path):
    return ep["file_copies"][ep["files"].index(path)]


def report(ep):
    st = ep["status_full"]
    print(f"\ndisk-full episode ({ep['mode']}): writer stalled with "
          f"{st['buffer']['queued_bytes']} bytes queued + {st['buffer']['engine_bytes']} "
          f"held; settled after {ep['settle_seconds']:.1f} s, then relay forwarded "
          f"{ep['held'][0]} -> {ep['held'][1]} bytes in 2 s; sender "
          f"{'running' if ep['held'][2] is None else 'exited'}")
    print(f"  output: {st['output']}; last_error: {st['last_error']!r}")
    print(f"  after space returned: sender exit {ep['sender_rc']} "
          f"({ep['sender_out'][0].strip()}) after {ep['resume_seconds']:.1f} s; lines "
          f"exit {ep['lines_rc']}; ACKed up to seq {ep['acked']}; file "
          f"{ep['status_resumed']['file']['name']}")
    for path in ep["files"]:
        frames = file_frames(copy_of(ep, path))
        print(f"  {os.path.basename(path)}: {len(frames)} frames of b0/adc0, "
              f"{station_rows(copy_of(ep, path))} weather rows")
    print(f"  exit {ep['exit']}")


# ---- the guarantees ---------------------------------------------------------------------


def test_disk_full_is_reported_and_the_daemon_survives(episode):
    assert episode["alive_when_full"], "h5recd died when the disk filled:\n" + episode["log"]
    st = episode["status_full"]
    assert st["output"]["full"] and st["output"]["state"] == "stalled", st["output"]
    assert st["output"]["full_since"] and st["output"]["held_bytes"] > 0, st["output"]
    # the reason names the file, the write and why it was not made
    fill = st["file"]["name"]
    reason = "No space left on device" if episode["mode"] == "tmpfs" else "File too large"
    why = st["output"]["reason"]
    assert why.startswith(fill + ": ") and reason in why and "output.min_free" in why, why
    log = episode["log_full"]
    assert re.search(r"^\S+ error: output full: " + re.escape(fill) + r": (writing (chunk|rows) "
                     r"[\d.]+ of /\S+|flush put off): " + reason, log, re.M), log[-3000:]
    assert re.search(r"^\S+ error: output full: writing stopped, reading paused until space "
                     r"returns", log, re.M), log[-3000:]
    # systemd's one-line STATUS says so too (the last one sent while stalled)
    statuses = [m for m in episode["notify_stalled"] if m.startswith("STATUS=")]
    assert statuses and statuses[-1].startswith("STATUS=OUTPUT FULL, data held in memory; "), \
        statuses[-3:]
    assert episode["exit"] == 0 and "stopped cleanly" in episode["log"], episode["log"][-3000:]


def test_tcp_senders_are_held_back_not_dropped(episode):
    before, after, sender_rc, lines_rc = episode["held"]
    assert sender_rc is None and lines_rc is None, "a sender gave up while the disk was full"
    assert before == after, f"{after - before} bytes went to the recorder while it was stalled"
    st = episode["status_full"]
    assert st["buffer"]["reading_paused"]
    total = sum(len(f.payload) for f in episode["fill_frames"])
    assert after < total, "the recorder took everything: the test did not fill it"
    for c in ("write_errors", "udp_drops", "protocol_errors", "lost_frames"):
        assert st["counters"][c] == 0, (c, st["counters"])


def test_every_frame_is_acked_and_stored_exactly_once(episode):
    frames = episode["fill_frames"]
    assert episode["sender_rc"] == 0, episode["sender_out"]
    assert len(frames) == FILL_SAMPLES // PER_FRAME
    last = frames[-1].seq  # seq 1 is the HELLO
    assert f"durable up to seq {last} of {last}" in episode["sender_out"][0], \
        episode["sender_out"]
    stored = []
    for path in episode["files"]:
        stored += file_frames(copy_of(episode, path))
    assert [q for q, _, _ in stored] == [f.seq for f in frames]
    for (q, t0, got), f in zip(stored, frames):
        assert t0 == f.t0 and np.array_equal(got, f.samples()), f"frame seq {q} differs"


def test_every_line_is_stored_exactly_once(episode):
    assert episode["lines_rc"] == 0, episode["lines_out"]
    rows = sum(station_rows(copy_of(episode, p)) for p in episode["files"])
    assert rows == 500 + FILL_LINES


def test_ingest_resumes_into_a_new_file_when_space_returns(episode):
    fill = episode["fill_file"]
    resumed = episode["status_resumed"]
    assert not resumed["output"]["full"] and resumed["output"]["full_episodes"] == 1
    assert resumed["file"]["name"] != fill
    files = episode["files"]
    assert files.index(resumed["file"]["name"]) == files.index(fill) + 1
    # the filled file ends where the next one begins: both hold frames
    assert file_frames(copy_of(episode, fill)) and \
        file_frames(copy_of(episode, resumed["file"]["name"]))
    assert re.search(r"notice: output: space returned after [\d.]+ s; what was held is "
                     r"stored, " + re.escape(fill) + " closed", episode["log"]), \
        episode["log"][-3000:]


def test_a_roll_after_the_episode_starts_a_clean_file(episode):
    assert episode["roll_reply"].stdout == "rolled\n", episode["roll_reply"]
    res = episode["after_send"]
    frames = episode["after_frames"]
    assert res.returncode == 0, res.stderr
    assert f"durable up to seq {len(frames) + 1} of {len(frames) + 1}" in res.stdout, res.stdout
    new = episode["status_after"]["file"]["name"]
    assert new not in (episode["fill_file"], episode["status_resumed"]["file"]["name"])
    stored = file_frames(copy_of(episode, new), group="b1")
    assert [q for q, _, _ in stored] == [f.seq for f in frames]
    assert all(np.array_equal(got, f.samples()) for (_, _, got), f in zip(stored, frames))


def test_a_file_closed_before_the_disk_filled_is_untouched(episode):
    path = episode["closed_before"]
    assert episode["hashes"][path] == episode["closed_before_sha"]
    assert station_rows(copy_of(episode, path)) == 500


def test_every_file_opens_after_the_episode(episode):
    for copy in episode["file_copies"]:
        with h5py.File(copy, "r") as f:  # refused while HDF5's write flag is set
            f.visit(lambda name: None)


def test_no_raw_hdf5_error_dumps_in_the_log(episode):
    dumps = episode["log"].count("HDF5-DIAG")
    assert dumps == 0, f"{dumps} HDF5-DIAG dumps in the log"


def test_error_messages_are_single_lines(episode):
    lines = episode["log"].splitlines()
    split = [(a, b) for a, b in zip(lines, lines[1:])
             if re.match(r"^\d{4}-\d\d-\d\dT\S+Z \w+: ", a)
             and not re.match(r"^(\d{4}-\d\d-\d\dT|HDF5-DIAG| )", b) and b]
    assert not split, f"{len(split)} log messages split over lines, e.g. {split[0]!r}"


# ---- stopping while the disk stays full --------------------------------------------------


@pytest.fixture(scope="module")
def stop_while_full(tmp_path_factory):
    """2 MiB sent and ACKed while there is space; then the disk fills under
    an ACKed send on another connection, the writer stalls, and the
    recorder gets SIGTERM while the disk stays full."""
    tmp = tmp_path_factory.mktemp("stopfull")
    disk, daemon, out, frame_port = frame_recorder(tmp, "2MiB")
    r = {"mode": disk.mode}
    relay = sender = None
    try:
        daemon.start()
        disk.pid = daemon.proc.pid
        samples = (np.arange(FILL_SAMPLES, dtype=np.int64) % 30011 - 15000).astype(np.int16)
        samples[:16 * PER_FRAME].tofile(tmp / "first.bin")
        r["first_send"] = send(["send", "-c", daemon.schema_path, "-k", "b0/adc0", "-d",
                                "int16", "-n", PER_FRAME, "--t0", T0, "--dt", "1e-6",
                                "--tee", tmp / "first-tee.bin", tmp / "first.bin"])
        assert "durable up to seq 17 of 17" in r["first_send"].stdout, r["first_send"]
        r["first_frames"] = data_frames(
            parse_frames_prefix((tmp / "first-tee.bin").read_bytes())[0])
        samples.tofile(tmp / "fill.bin")
        relay = AckRelay(frame_port)
        sender = start(["send", "--to", relay.address, "-k", "b0/adc0", "-d", "int16", "-n",
                        PER_FRAME, "--t0", T0 + 10**12, "--dt", "1e-6", "--tee",
                        tmp / "tee.bin", tmp / "fill.bin"])
        wait_for(lambda: daemon.status()["output"]["stalled"], timeout=30,
                 what="the writer to stall")
        r["status"] = daemon.status()
        t = time.monotonic()
        daemon.proc.send_signal(signal.SIGTERM)
        r["exit"] = daemon.proc.wait(timeout=STOP_WAIT_S + 30)
        r["stop_seconds"] = time.monotonic() - t
        sender.kill()
        sender.communicate()
        relay.close()
        r["acked"] = relay.acked_seq() or 0
        r["frames"] = data_frames(parse_frames_prefix((tmp / "tee.bin").read_bytes())[0])
        r["log"] = daemon.log()
        (path,) = [os.path.join(out, p) for p in os.listdir(out)]
        r["path"] = path
        r["open_error"] = None
        try:
            r["stored"] = file_frames(path)
        except OSError as e:
            r["open_error"] = str(e)
        print(f"\nstop while full ({disk.mode}): exit {r['exit']} after "
              f"{r['stop_seconds']:.1f} s; ACKed up to seq {r['acked']}; "
              f"{len(r.get('stored', []))} frames in {os.path.basename(path)}")
        yield r
    finally:
        for proc in (sender,):
            if proc is not None and proc.poll() is None:
                proc.kill()
        if relay is not None:
            relay.close()
        daemon.kill()
        disk.close()


def test_stop_on_a_full_disk_is_bounded_and_says_what_was_lost(stop_while_full):
    r = stop_while_full
    # the writer waits STOP_WAIT_S for space, then gives up: exit 1, loudly
    assert r["exit"] == 1, r["log"][-3000:]
    assert r["stop_seconds"] >= STOP_WAIT_S - 1
    assert "stopping, and the output stayed full: what is not stored yet is lost" in r["log"]
    assert re.search(r"error: write_errors: data from \S+ \(127\.0\.0\.1:\d+\) not stored",
                     r["log"]), r["log"][-3000:]


def test_the_reserve_lets_the_file_close_on_a_full_disk(stop_while_full):
    r = stop_while_full
    assert r["open_error"] is None, r["open_error"]
    stored = r["stored"]
    # the frames ACKed before the disk filled, then those of the filling
    # connection in order, as far as the frame index goes
    sent = r["first_frames"] + r["frames"]
    assert len(stored) >= len(r["first_frames"]), len(stored)
    for (q, t0, got), f in zip(stored, sent):
        assert q == f.seq and t0 == f.t0 and np.array_equal(got, f.samples())
    # no frame ACKed as durable on the filling connection is missing
    acked = [f for f in r["frames"] if f.seq <= r["acked"]]
    assert len(stored) >= len(r["first_frames"]) + len(acked), (r["acked"], len(stored))


def test_stop_with_data_held_and_a_sender_waiting_for_its_ack(tmp_path):
    """The disk is full and the recorder holds a frame (less than
    max_buffer: not stalled) when SIGTERM comes, and its sender stays
    connected waiting for the frame's ACK. The drain keeps connections that
    are owed ACKs, so the writer must give up on its own: after STOP_WAIT_S
    the connection is closed without an ACK and h5recd exits 1, leaving a
    file that opens."""
    disk, daemon, out, frame_port = frame_recorder(tmp_path, "2MiB")
    sock = None
    try:
        daemon.start()
        disk.pid = daemon.proc.pid
        first = tmp_path / "first.bin"
        np.arange(PER_FRAME, dtype=np.int16).tofile(first)
        res = send(["send", "-c", daemon.schema_path, "-k", "b0/adc0", "-d", "int16", "-n",
                    PER_FRAME, "--t0", T0, "--dt", "1e-6", first])
        assert "durable up to seq 2 of 2" in res.stdout, res
        (path,) = [os.path.join(out, p) for p in os.listdir(out)]
        disk.fill_up(path)
        sock = socket.create_connection(("127.0.0.1", frame_port))
        sock.sendall(encode_frame(DATA, key="b0/adc0", dtype=DTYPE_CODES["int16"], seq=1,
                                  t0=T0 + 10**12, flags=FLAG_ACK,
                                  payload=np.ones(PER_FRAME, np.int16).tobytes()))
        wait_for(lambda: daemon.status()["output"]["full"], what="the output full")
        assert not daemon.status()["output"]["stalled"]
        t = time.monotonic()
        daemon.proc.send_signal(signal.SIGTERM)
        rc = daemon.proc.wait(timeout=STOP_WAIT_S + 30)
        seconds = time.monotonic() - t
        log = daemon.log()
        assert rc == 1, log[-3000:]
        assert seconds >= STOP_WAIT_S - 1, seconds
        assert "stopping, and the output stayed full" in log, log[-3000:]
        sock.settimeout(10)
        replies = b""
        try:
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                replies += chunk
        except ConnectionResetError:
            pass
        assert replies == b"", f"the recorder ACKed a frame it did not store: {replies!r}"
        assert len(file_frames(path)) == 1
    finally:
        if sock is not None:
            sock.close()
        daemon.kill()
        disk.close()


# Where the second SIGTERM lands, and whether it can still shorten the stop:
# - draining: connections are still open (the first SIGTERM closed the
#   listeners); it closes them and gives up the held data at once;
# - writing: the connections are gone and the writer waits for space; the
#   loop still runs for it, so it gives up at once too;
# - handover: the writer has finished and libuv's handler goes, which puts
#   SIGTERM back to its default action. That window is microseconds wide; the
#   sigdfl_window shim holds it open for half a second and says when it is
#   in it. A SIGTERM there once killed the process (-15) instead of letting
#   it exit 1.
# Each: the log line to wait for, and the one the second SIGTERM makes (None:
# it comes too late to change anything).
SECOND_SIGTERM = {"draining": ("stopping; draining", "again: closing connections now"),
                  "writing": ("all connections drained; writing the rest",
                              "again: closing the files without waiting for disk space"),
                  "handover": ("sigdfl_window: SIGTERM is at", None)}


@pytest.mark.parametrize("second_sigterm", sorted(SECOND_SIGTERM))
def test_file_size_limit_does_not_kill_the_daemon(tmp_path, second_sigterm):
    """RLIMIT_FSIZE = 2 MiB, default SIGXFSZ disposition (as systemd or a
    shell gives it), 4 MiB sent: the file-size limit binds like a full disk
    (output.min_free is kept below it), so the daemon reports EFBIG and holds
    the data; then the stop, with a second SIGTERM at each stage."""
    frame_port = free_port()
    control = str(tmp_path / "control.sock")

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2 << 20, resource.RLIM_INFINITY))
    env = None
    if second_sigterm == "handover":
        shim = os.path.join(os.environ.get("H5REC_TOOLS_DIR", ""), "sigdfl_window.so")
        assert os.path.exists(shim), f"{shim}: build the tests (tests/tools/preload)"
        # a sanitized h5recd: libasan then does not come first, which is fine here
        env = {"LD_PRELOAD": shim, "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "")
               + ":verify_asan_link_order=0"}
    daemon = Daemon(tmp_path, frame_only(SCHEMA).format(out=tmp_path / "out", control=control,
                                                        frame_port=frame_port, min_free="256KiB"),
                    control, ports=(frame_port,), preexec_fn=limit, env=env)
    try:
        daemon.start()
        data = tmp_path / "data.bin"
        np.zeros(2 << 20, np.int16).tofile(data)
        send(["send", "-c", daemon.schema_path, "-k", "b0/adc0", "-d", "int16", "-n",
              PER_FRAME, "--no-ack", data])
        wait_for(lambda: daemon.status()["output"]["full"], timeout=10, what="output full")
        assert daemon.running(), (f"h5recd died: exit {daemon.proc.returncode} "
                                  f"(-{int(signal.SIGXFSZ)} is SIGXFSZ)\n{daemon.log()[-2000:]}")
        st = daemon.status()
        assert "File too large" in st["last_error"], st["last_error"]
        assert "file-size limit" in st["output"]["reason"], st["output"]
        assert st["counters"]["write_errors"] == 0  # held, not lost (yet)
        # Stopping while it is held: a second SIGTERM gives up at once, not
        # after the STOP_WAIT_S a single one waits for space. The file could
        # not be completed: a clean exit that says so (1), not a death by
        # signal.
        mark, answer = SECOND_SIGTERM[second_sigterm]
        if second_sigterm == "draining":  # a quiet connection keeps the drain going
            idle = socket.create_connection(("127.0.0.1", frame_port), timeout=5)
            wait_for(lambda: daemon.status()["listeners"][0]["connections_open"] == 1,
                     what="the connection")
        t = time.monotonic()
        daemon.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: mark in daemon.log(), timeout=STOP_WAIT_S + 20, what=second_sigterm)
        if second_sigterm == "writing":  # too late to roll: said, and harmless
            daemon.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: "SIGHUP while stopping: no roll" in daemon.log(), what="SIGHUP")
        daemon.proc.send_signal(signal.SIGTERM)
        rc = daemon.proc.wait(timeout=30)
        seconds = time.monotonic() - t
        log = daemon.log()
        if second_sigterm == "draining":
            idle.close()
        assert rc == 1, f"exit {rc}\n{log[-3000:]}"
        if answer:
            assert answer in log, log[-3000:]
            assert seconds < STOP_WAIT_S - 2, (seconds, log[-3000:])
        else:  # nothing left to shorten: it waited for space in vain
            assert seconds >= STOP_WAIT_S - 1, (seconds, log[-3000:])
        assert "stopping, and the output stayed full" in log
        assert "closing the output file" in log
    finally:
        daemon.kill()


def test_hdf5_meeting_the_file_size_limit_ends_the_file(tmp_path):
    """min_free 0B: nothing keeps HDF5 off the 2 MiB RLIMIT_FSIZE, so its
    chunk write fails with EFBIG. After a failed write HDF5's view of the
    file is in doubt, so the file ends there (what was written since its
    last flush is not ACKed: the sender is disconnected) and the daemon goes
    on in a new file: it neither dies of SIGXFSZ nor writes on into a file
    it cannot trust. Every ACKed frame is in a file."""
    frame_port = free_port()
    control = str(tmp_path / "control.sock")
    out = tmp_path / "out"

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2 << 20, resource.RLIM_INFINITY))
    daemon = Daemon(tmp_path, frame_only(SCHEMA).format(out=out, control=control,
                                                        frame_port=frame_port, min_free="0B"),
                    control, ports=(frame_port,), preexec_fn=limit)

    def sender(name, frames, t0):
        data = tmp_path / f"{name}.bin"
        (np.arange(frames * PER_FRAME, dtype=np.int64) * (len(name) + 1) % 30011
         - 15000).astype(np.int16).tofile(data)
        tee = tmp_path / f"{name}-tee.bin"
        res = send(["send", "-c", daemon.schema_path, "-k", "b0/adc0", "-d", "int16", "-n",
                    PER_FRAME, "--t0", t0, "--dt", "1e-6", "--tee", tee, data])
        m = re.search(r"durable up to seq (\d+)", res.stdout + res.stderr)
        sent = {f.seq: f for f in data_frames(parse_frames_prefix(tee.read_bytes())[0])}
        return res, (int(m.group(1)) if m else 0), sent

    try:
        daemon.start()
        # 1 MiB fits: all of it ACKed (seq 1 is the HELLO)
        res, acked_a, sent_a = sender("a", 8, T0)
        assert res.returncode == 0 and acked_a == 9, res
        # 3 MiB more does not: the write past the limit fails
        res, acked_b, sent_b = sender("bb", 24, T0 + 10**11)
        assert res.returncode != 0, f"the sender was ACKed past a failed write: {res}"
        wait_for(lambda: "the file ends here" in daemon.log(), what="the end of the file")
        assert daemon.running(), daemon.log()[-2000:]
        assert "File too large" in daemon.log(), daemon.log()[-3000:]
        assert daemon.status()["counters"]["write_errors"] >= 1
        # what follows goes to a new file, under the same limit
        res, acked_c, sent_c = sender("ccc", 4, T0 + 10**12)
        assert res.returncode == 0 and acked_c == 5, res
        daemon.stop()
        log = daemon.log()
        # HDF5 writes metadata at the close, past the limit too: the ended
        # file keeps its open-for-writing mark, and a clean exit says so
        assert daemon.proc.returncode == 1, log[-3000:]
        assert "It could not be closed" in log and "h5clear -s" in log, log[-3000:]
        files = sorted(os.listdir(out))
        assert len(files) == 2, files
        ended = os.path.join(out, files[0])
        subprocess.run(["h5clear", "-s", "--increment", ended], check=True)
        # The ended file is as HDF5 left it: its frame index (written at a
        # flush) may cover fewer frames than the samples' extent.
        with h5py.File(ended, "r") as f:
            g = f["b0"]
            seqs, starts = g["adc0_frame_seq"][...], g["adc0_frame_start"][...]
            times, data = g["adc0_frame_time"][...], g["adc0"][...]
        assert list(starts) == [k * PER_FRAME for k in range(len(starts))], list(starts)
        assert len(data) >= len(starts) * PER_FRAME
        stored = [(int(q), int(t), data[int(a):int(a) + PER_FRAME])
                  for q, t, a in zip(seqs, times, starts)]
        stored += file_frames(os.path.join(out, files[1]))
        for t0, acked, sent in ((T0, acked_a, sent_a), (T0 + 10**11, acked_b, sent_b),
                                (T0 + 10**12, acked_c, sent_c)):
            mine = {}
            for q, t, samples in stored:
                if t0 <= t < t0 + 10**11:
                    mine.setdefault(q, []).append(samples)
            for seq in (q for q in sent if q <= acked):
                assert len(mine.get(seq, ())) == 1, f"ACKed frame {seq} stored {mine.get(seq)}"
                assert bytes(mine[seq][0]) == sent[seq].payload, f"frame {seq} differs"
        # (the new file may also hold a frame of the sender it disconnected)
        assert [q for q, t, _ in file_frames(os.path.join(out, files[1]))
                if t >= T0 + 10**12] == [2, 3, 4, 5]
    finally:
        daemon.kill()


# ---- one frame the full disk refuses ---------------------------------------------------


@pytest.fixture(scope="module")
def refused_frame(tmp_path_factory):
    """4 frames while there is space (all ACKed), then the disk is filled to
    the last byte and one more frame is sent with `h5rec send` (ACK
    requested): its 128 KiB chunk cannot be written, and is held. Then space
    returns and the daemon stops (SIGTERM), closing the file."""
    tmp = tmp_path_factory.mktemp("refused")
    disk, daemon, out, frame_port = frame_recorder(tmp, "2MiB")
    if not disk.mounted:
        disk.close()
        pytest.skip("needs the tmpfs: it fills the file system to the last byte")
    r = {"mode": disk.mode}
    try:
        daemon.start()
        disk.pid = daemon.proc.pid
        first = (np.arange(4 * PER_FRAME) % 1000).astype(np.int16)
        last = (np.arange(PER_FRAME) % 777 + 5).astype(np.int16)
        first.tofile(tmp / "first.bin")
        last.tofile(tmp / "last.bin")
        r["first_send"] = send(["send", "-c", daemon.schema_path, "-k", "b0/adc0", "-d",
                                "int16", "-n", PER_FRAME, "--t0", T0, "--dt", "1e-6",
                                tmp / "first.bin"])
        assert "durable up to seq 5 of 5" in r["first_send"].stdout, r["first_send"]
        (path,) = [os.path.join(out, p) for p in os.listdir(out)]
        disk.fill_up(path)
        r["last_send"] = send(["send", "-c", daemon.schema_path, "-k", "b0/adc0", "-d",
                               "int16", "-n", PER_FRAME, "--t0", T0 + 10**12, "--dt", "1e-6",
                               tmp / "last.bin"])
        r["status"] = daemon.status()
        disk.free_space()
        r["exit"] = daemon.stop()
        r["log"] = daemon.log()
        r["files"] = sorted(os.listdir(out))
        r["stored"] = file_frames(path)
        r["first"], r["last"] = first, last
        print(f"\nrefused frame ({disk.mode}): send after the disk filled: exit "
              f"{r['last_send'].returncode}: {r['last_send'].stdout.strip()} "
              f"{r['last_send'].stderr.strip()}; status: output {r['status']['output']}, "
              f"last_error {r['status']['last_error'][:200]!r}; files {r['files']}, "
              f"frames {[q for q, _, _ in r['stored']]}")
        yield r
    finally:
        daemon.kill()
        disk.close()


def test_a_refused_write_is_held_and_reported(refused_frame):
    r = refused_frame
    st = r["status"]
    assert st["output"]["full"] and not st["output"]["stalled"], st["output"]
    why = st["output"]["reason"]
    assert "writing chunk 4 of /b0/adc0" in why and "No space left on device" in why, why
    assert st["counters"]["write_errors"] == 0
    assert r["exit"] == 0 and "stopped cleanly" in r["log"]


def test_no_ack_for_a_frame_not_yet_stored(refused_frame):
    r = refused_frame
    assert "durable up to seq 2 of 2" not in r["last_send"].stdout, r["last_send"]


def test_the_held_frame_is_stored_once_space_returns(refused_frame):
    r = refused_frame
    stored = r["stored"]
    assert [q for q, _, _ in stored] == [2, 3, 4, 5, 2], [q for q, _, _ in stored]
    got = np.concatenate([s for _, _, s in stored])
    assert np.array_equal(got, np.concatenate([r["first"], r["last"]]))
    assert len(r["files"]) == 1, r["files"]
