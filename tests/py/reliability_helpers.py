"""Shared machinery of the reliability tests (test_crash.py, test_diskfull.py).

`Daemon` runs the real h5recd on ONE schema file that never changes, so it
can be killed and restarted "on the same schema" (recorder_fixture.Recorder
rewrites its schema with new ports at every start). `AckRelay` sits between
the real client (`h5rec simulate`/`h5rec send`) and the recorder: it
forwards both directions unchanged, counts exactly how many bytes it has
handed to the recorder's socket, keeps a copy of them, and decodes the ACK
frames coming back (SPEC 3.1), each stamped with the byte count at the time.
That is what a killed recorder takes from the client: `h5rec` prints the
acknowledged seq only when it finishes successfully, and a SIGKILL makes it
fail with "the recorder closed the connection".

`open_killed` opens a file a killed writer left behind the way
docs/engine.md says a user would: SWMR read, else `h5clear -s` on a copy.
Frame encoding/decoding and CRC-32C come from recorder_fixture (written
from the SPEC, independently of the C code).
"""
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from recorder_fixture import (ACK, DATA, EVENT, H5REC, H5RECD, HEADER,  # noqa: E402,F401
                              FLAG_ACK, FLAG_CRC, HELLO, SEC, T0, crc32c, encode_frame,
                              free_port, parse_frames)

import h5py  # noqa: E402  (after recorder_fixture has set HDF5_PLUGIN_PATH)


def wait_for(predicate, timeout=10.0, what="condition", period=0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(period)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ---- the daemon ----------------------------------------------------------------


class Daemon:
    """h5recd on a fixed schema file (written once by the caller)."""

    def __init__(self, workdir, schema_text, control_socket, ports=(), args=(),
                 preexec_fn=None, env=None, wrapper=()):
        self.workdir = str(workdir)
        self.schema_path = os.path.join(self.workdir, "schema.yaml")
        with open(self.schema_path, "w") as f:
            f.write(schema_text)
        self.control_socket = control_socket
        self.ports = list(ports)
        self.args = [str(a) for a in args]
        self.preexec_fn = preexec_fn
        self.env = None if env is None else {**os.environ, **env}
        self.wrapper = [str(a) for a in wrapper]  # e.g. strace and its options
        self.proc = None
        self.starts = 0
        self.log_path = None

    def start(self, timeout=15.0):
        self.starts += 1
        self.log_path = os.path.join(self.workdir, f"h5recd-{self.starts}.log")
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(self.wrapper + [H5RECD, "-c", self.schema_path, "-l",
                                                         "info"]
                                         + self.args, stdout=log, stderr=subprocess.STDOUT,
                                         cwd=self.workdir, preexec_fn=self.preexec_fn,
                                         env=self.env)
        deadline = time.monotonic() + timeout
        while not re.search(r"notice: recording$", self.log(), re.M):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"h5recd did not start (exit {self.proc.poll()}):\n"
                                     f"{self.log()}")
            time.sleep(0.01)
        for port in self.ports:
            wait_for(lambda: _port_open(port), timeout=5, what=f"port {port}")
        return self

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except (FileNotFoundError, TypeError):
            return ""

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, signum):
        """Send SIGNUM to h5recd (not to a wrapper such as strace, which
        passes on what h5recd does)."""
        pid = self.proc.pid
        if self.wrapper:
            try:
                with open(f"/proc/{pid}/task/{pid}/children") as f:
                    pid = int(f.read().split()[0])
            except (OSError, IndexError, ValueError):
                return
        os.kill(pid, signum)

    def kill(self):
        if self.running():
            self.signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=30)

    def stop(self, timeout=60):
        """SIGTERM and wait; returns the exit status."""
        if self.running():
            self.signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def h5rec(self, *args, check=True, timeout=60):
        res = subprocess.run([H5REC, *[str(a) for a in args]], capture_output=True, text=True,
                             timeout=timeout)
        if check and res.returncode != 0:
            state = ("running" if self.running() else
                     f"exited {self.proc.poll() if self.proc else None}, its log:\n"
                     + self.log()[-4000:])
            raise AssertionError(f"h5rec {args}: {res.returncode}\n{res.stderr}"
                                 f"h5recd {state}")
        return res

    def status(self):
        return json.loads(self.h5rec("status", "--socket", self.control_socket,
                                     "--json").stdout)


def _port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


# ---- the ACK-recording relay -------------------------------------------------------


class AckRelay:
    """Transparent TCP relay client <-> recorder that records ACKs.

    forwarded: bytes handed to the recorder's socket so far (exact: counted
    per send() return); sent_copy: those bytes; acks: [(monotonic time, seq,
    forwarded at that time)], in arrival order."""

    def __init__(self, upstream_port, keep_copy=True):
        self.upstream_port = upstream_port
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        self.keep_copy = keep_copy
        self.sent_copy = bytearray()
        self.forwarded = 0
        self.acks = []
        self.bad_replies = []
        self.lock = threading.Lock()
        self.client = self.upstream = None
        self.threads = []
        self.upstream_closed_at = None
        self._accept = threading.Thread(target=self._run, daemon=True)
        self._accept.start()

    @property
    def address(self):
        return f"tcp:127.0.0.1:{self.port}"

    def _run(self):
        try:
            self.client, _ = self.listener.accept()
        except OSError:
            return
        self.listener.close()
        try:
            self.upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        except OSError:
            self.client.close()
            return
        self.upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        up = threading.Thread(target=self._pump_up, daemon=True)
        down = threading.Thread(target=self._pump_down, daemon=True)
        self.threads = [up, down]
        up.start()
        down.start()

    def _pump_up(self):
        try:
            while True:
                buf = self.client.recv(65536)
                if not buf:
                    self.upstream.shutdown(socket.SHUT_WR)
                    return
                view = memoryview(buf)
                while view:
                    n = self.upstream.send(view)
                    with self.lock:
                        if self.keep_copy:
                            self.sent_copy += view[:n]
                        self.forwarded += n
                    view = view[n:]
        except OSError:
            self._close_both()

    def _pump_down(self):
        pending = b""
        try:
            while True:
                buf = self.upstream.recv(4096)
                if not buf:
                    break
                pending += buf
                while len(pending) >= HEADER.size:
                    magic, version, ftype, _dt, flags, key_len, _r, payload_len, seq, _t0, \
                        _e = HEADER.unpack_from(pending, 0)
                    size = HEADER.size + key_len + payload_len + (4 if flags & FLAG_CRC else 0)
                    if len(pending) < size:
                        break
                    if magic != b"H5RF" or ftype != ACK:
                        self.bad_replies.append(pending[:size])
                    else:
                        with self.lock:
                            self.acks.append((time.monotonic(), seq, self.forwarded))
                    pending = pending[size:]
                self.client.sendall(buf)
        except OSError:
            pass
        self.upstream_closed_at = time.monotonic()
        self._close_both()

    def _close_both(self):
        for s in (self.client, self.upstream):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except (OSError, AttributeError):
                pass

    def close(self):
        try:
            self.listener.close()
        except OSError:
            pass
        self._close_both()
        for t in self.threads:
            t.join(timeout=10)
        for s in (self.client, self.upstream):
            if s is not None:
                s.close()

    def acked_seq(self):
        with self.lock:
            return max((seq for _, seq, _ in self.acks), default=None)


# ---- opening files a killed writer left ----------------------------------------------


def open_killed(path, scratch_dir):
    """Open PATH as a user recovering after a crash would, without touching
    it: try SWMR read on a copy; if refused, `h5clear -s` the copy and open it
    normally. Returns (h5py.File, how) -- how is "swmr" or "h5clear"."""
    os.makedirs(scratch_dir, exist_ok=True)
    copy = os.path.join(scratch_dir, os.path.basename(path))
    shutil.copyfile(path, copy)
    try:
        return h5py.File(copy, "r", libver="latest", swmr=True), "swmr"
    except OSError as first:
        res = subprocess.run(["h5clear", "-s", copy], capture_output=True, text=True,
                             timeout=60)
        if res.returncode != 0:
            raise AssertionError(f"{path}: SWMR read refused ({first}) and h5clear -s "
                                 f"failed: {res.stdout}{res.stderr}")
        try:
            return h5py.File(copy, "r"), "h5clear"
        except OSError as second:
            raise AssertionError(f"{path}: unreadable: SWMR read: {first}; after h5clear -s:"
                                 f" {second}")


def frame_ends(frames):
    """End offset (exclusive) of every frame from parse_frames."""
    out = []
    for f in frames:
        end = f.offset + HEADER.size + len(f.key.encode()) + len(f.payload)
        if f.flags & FLAG_CRC:
            end += 4
        out.append(end)
    return out


def parse_frames_prefix(buf):
    """parse_frames on the whole frames of BUF (a killed client's tee may end
    inside a frame); returns (frames, bytes of whole frames)."""
    at = 0
    view = memoryview(buf)
    while at + HEADER.size <= len(buf):
        _m, _v, _t, _d, flags, key_len, _r, payload_len, *_ = HEADER.unpack_from(buf, at)
        size = HEADER.size + key_len + payload_len + (4 if flags & 1 else 0)
        if at + size > len(buf):
            break
        at += size
    return parse_frames(bytes(view[:at]), check_crc_below=0), at


# ---- a sender that counts ACKs -------------------------------------------------------

PER_FRAME = 1000  # int16 samples of a board_frame


def frame_samples(seq):
    """The samples of frame SEQ of any board (board_frame)."""
    import numpy as np
    return (np.arange(PER_FRAME) + seq * 7).astype(np.int16)


def board_frame(board, seq):
    """DATA frame SEQ of key BOARD/adc0 (int16), asking for an ACK."""
    return encode_frame(DATA, f"{board}/adc0", frame_samples(seq).tobytes(), dtype=3, seq=seq,
                        t0=T0 + seq * 1000000, flags=FLAG_ACK)


class AckingSender:
    """Sends frames of one board every `period` s on a thread and reads the
    ACKs; stops when the recorder closes the connection or `count` are sent."""

    def __init__(self, address, board, count, period):
        self.sock = socket.create_connection(address, timeout=30)
        self.board, self.count, self.period = board, count, period
        self.sent = self.acked = 0
        self.closed_by_peer = False
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        buf = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                self.closed_by_peer = True
                return
            buf += chunk
            frames, whole = parse_frames_prefix(buf)
            buf = buf[whole:]
            for fr in frames:
                assert fr.type == ACK
                self.acked = max(self.acked, fr.seq)

    def run(self):
        for seq in range(1, self.count + 1):
            if self.closed_by_peer:
                break
            try:
                self.sock.sendall(board_frame(self.board, seq))
            except OSError:
                break
            self.sent = seq
            time.sleep(self.period)
        return self

    def wait_acked(self, timeout=30):
        deadline = time.monotonic() + timeout
        while self.acked < self.sent and not self.closed_by_peer and time.monotonic() < deadline:
            time.sleep(0.02)

    def close(self):
        self.sock.close()
