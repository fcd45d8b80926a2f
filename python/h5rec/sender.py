"""Sending frames to h5recd (docs/protocols.md §1, docs/client.md).

One `Sender` is one frame connection (TCP or Unix stream socket) with its
own seq counter. Every DATA and EVENT frame asks for an ACK; a copy of it
is kept until an ACK covers its seq. When the recorder closes the
connection (it stopped, restarted, or could not store data it had taken)
the sender reconnects and sends every kept frame again, with its original
seq, so that nothing acknowledged is lost and nothing unacknowledged is
forgotten. A Sender is not thread-safe: use it from one thread at a time.

With precompress=True a Sender runs the channel's HDF5 filter pipeline
itself (shuffle, LZ4 or deflate, Fletcher-32: see h5rec._chunks) and sends
each waveform as the chunk the recorder stores untouched (docs/protocols.md
§1.5). It learns the pipeline from the recorder (a DESCRIBE frame per
channel key) and refuses to guess: a channel the recorder does not take
pre-compressed chunks for raises RefusedError with the recorder's reason.
"""
import collections
import re
import select
import socket
import struct
import time

import numpy as np

from . import _chunks
from ._crc32c import crc32c
from ._time import to_ns

HEADER = struct.Struct("<4sBBBBHHIQqQ")  # 40 bytes, docs/protocols.md §1.1
MAGIC = b"H5RF"
VERSION = 1
DATA, EVENT, HELLO, ACK, DESCRIBE, ERROR = 1, 2, 3, 4, 5, 6
FLAG_CRC, FLAG_ACK, FLAG_CHUNKS = 1, 2, 4
MAX_KEY = 1024
MAX_PAYLOAD = 0xFFFFFFFF

# numpy (kind, itemsize) -> wire dtype code
_DTYPE_CODES = {("i", 1): 1, ("u", 1): 2, ("i", 2): 3, ("u", 2): 4, ("i", 4): 5,
                ("u", 4): 6, ("i", 8): 7, ("u", 8): 8, ("f", 4): 9, ("f", 8): 10}


# What sending on a connection the recorder has closed, or that has been
# stuck (back-pressure) for longer than the timeout, raises. After a
# timeout a frame may be half written: the connection is given up too.
_CONNECTION_LOST = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError,
                    socket.timeout)


class ProtocolError(Exception):
    """The recorder sent something that is not an ACK, DESCRIBE or ERROR
    frame."""


class RefusedError(Exception):
    """The recorder refused a frame, or takes no pre-compressed chunks for a
    channel; the message is the recorder's reason."""


def dtype_code(dtype):
    """The frame dtype code of a numpy dtype (int8..uint64, float32, float64)."""
    dtype = np.dtype(dtype)
    code = _DTYPE_CODES.get((dtype.kind, dtype.itemsize))
    if code is None:
        raise TypeError(f"numpy dtype {dtype} has no frame dtype (int8..uint64, "
                        "float32, float64)")
    return code


def _escape_key(name):
    if not name:
        raise ValueError("empty field name")
    return (name.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")
            .replace(" ", "\\ "))


def field_set(fields):
    """A dict as a line-protocol field set (docs/protocols.md §2.4):
    bool -> true/false, numpy unsigned -> 12u, other ints -> 12i,
    floats -> repr, str -> quoted."""
    if not fields:
        raise ValueError("a field set needs at least one field")
    parts = []
    for name, value in fields.items():
        if isinstance(value, (bool, np.bool_)):
            text = "true" if value else "false"
        elif isinstance(value, np.unsignedinteger):
            text = f"{int(value)}u"
        elif isinstance(value, (int, np.integer)):
            text = f"{int(value)}i"
        elif isinstance(value, (float, np.floating)):
            v = float(value)
            if v != v or v in (float("inf"), float("-inf")):
                raise ValueError(f"field {name}: {v} cannot be sent in a field set")
            text = repr(v)
        elif isinstance(value, str):
            text = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        else:
            raise TypeError(f"field {name}: cannot send a {type(value).__name__}")
        parts.append(f"{_escape_key(str(name))}={text}")
    return ",".join(parts).encode()


def encode_frame(ftype, key, payload=b"", dtype=0, seq=0, t0=0, event_id=0, crc=True,
                 ack=False, chunks=False):
    """One frame as bytes (chunks: the payload is pre-compressed chunks)."""
    key = key.encode() if isinstance(key, str) else bytes(key)
    if len(key) > MAX_KEY:
        raise ValueError(f"key of {len(key)} bytes (at most {MAX_KEY})")
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes does not fit a frame")
    flags = (FLAG_CRC if crc else 0) | (FLAG_ACK if ack else 0) | (FLAG_CHUNKS if chunks else 0)
    head = HEADER.pack(MAGIC, VERSION, ftype, dtype, flags, len(key), 0, len(payload),
                       seq, t0, event_id) + key
    if not crc:
        return head + bytes(payload)
    return b"".join((head, payload, struct.pack("<I", crc32c(payload, crc32c(head)))))


def parse_address(address):
    """"tcp:HOST:PORT", "tcp:[V6]:PORT", "unix:PATH" or (host, port) ->
    (family, sockaddr)."""
    if isinstance(address, tuple):
        host, port = address
        return (socket.AF_INET6 if ":" in host else socket.AF_INET), (host, int(port))
    kind, _, rest = str(address).partition(":")
    if kind == "unix" and rest:
        return socket.AF_UNIX, rest
    if kind == "tcp":
        host, _, port = rest.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            return socket.AF_INET6, (host[1:-1], int(port))
        if host and port:
            return socket.AF_INET, (host, int(port))
    raise ValueError(f"address {address!r}: expected tcp:HOST:PORT or unix:PATH")


class Sender:
    """A frame connection to h5recd with ACKs and replay.

    address: "tcp:HOST:PORT", "tcp:[::1]:PORT", "unix:PATH" or (host, port).
    name, token: sent in a HELLO frame first (token only when given).
    crc: add the CRC-32C trailer (pure Python: see h5rec._crc32c).
    ack: ask for ACKs and keep frames for replay; with ack=False frames are
        sent once and forgotten (no replay, wait() returns at once).
    replay_frames, replay_bytes: bound of the kept frames; send() blocks,
        reading ACKs, while a new frame would exceed them.
    timeout: seconds send() may block for room and wait() by default.
    reconnect_timeout: seconds to keep trying to reconnect after the
        recorder closed the connection, before ConnectionError.
    precompress: encode each waveform with the channel's filter pipeline
        here and send it as stored chunks (records: one waveform; stream:
        whole chunks per frame); the recorder writes them without
        compressing.
    """

    def __init__(self, address, name="h5rec-python", token=None, *, crc=True, ack=True,
                 replay_frames=4096, replay_bytes=64 << 20, timeout=30.0,
                 reconnect_timeout=30.0, max_replays=5, precompress=False):
        self.family, self.sockaddr = parse_address(address)
        self.name, self.token = name, token
        self.crc, self.ack = crc, ack
        self.replay_frames, self.replay_bytes = replay_frames, replay_bytes
        self.timeout, self.reconnect_timeout = timeout, reconnect_timeout
        self.max_replays = max_replays
        self.precompress = precompress
        self._pipelines = {}       # key -> the recorder's DESCRIBE answer (dict)
        self.refused = None        # the reason of the last ERROR frame
        self.last_seq = 0          # seq of the last frame sent
        self.durable_seq = 0       # highest seq the recorder acknowledged
        self.reconnects = 0        # connections made after the first
        self.replayed = 0          # frames sent again after a reconnect
        self._kept = collections.deque()   # (seq, frame bytes), not yet acknowledged
        self._kept_bytes = 0
        self._rbuf = b""
        self._sock = None
        self._fruitless = 0        # connections closed in a row without ACK progress
        self._connect(time.monotonic() + self.reconnect_timeout)

    # -- public --

    def send(self, key, samples, t0, event_id=0):
        """Send `samples` (a numpy array or anything np.asarray takes; sent
        flattened in C order, little-endian, in its own dtype) as one DATA
        frame for channel `key`, first sample at `t0` (int ns since 1970,
        numpy.datetime64, datetime or ISO string). Returns the frame's seq."""
        arr = np.asarray(samples)
        code = dtype_code(arr.dtype)
        if arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        payload = memoryview(np.ascontiguousarray(arr).reshape(-1)).cast("B")
        if not key:
            raise ValueError("DATA frames need a key")
        if self.precompress:
            return self.send_chunk(key, arr, t0, event_id)
        return self._send(DATA, key, payload, code, to_ns(t0), int(event_id))

    def describe(self, key, timeout=None):
        """How the recorder stores the chunks of channel `key`: a dict with
        layout, dtype, chunk (samples), pipeline (filter list) and id.
        Asked once per key (a DESCRIBE frame); RefusedError when the
        channel takes no pre-compressed chunks."""
        if key not in self._pipelines:
            self.last_seq += 1
            self._write(encode_frame(DESCRIBE, key, b"", 0, self.last_seq, crc=self.crc))
            deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
            while key not in self._pipelines:
                left = deadline - time.monotonic()
                if left <= 0 or self._sock is None:
                    raise TimeoutError(f"no DESCRIBE answer for {key!r}")
                self._read_acks(left)
        answer = self._pipelines[key]
        if "error" in answer:
            raise RefusedError(f"{key}: {answer['error']}")
        return answer

    def send_chunks(self, waveforms, threads=None):
        """Encode many waveforms on `threads` threads (default: the CPUs)
        and send them in the order given, each as send_chunk() would.
        `waveforms`: (key, samples, t0, event_id) tuples. lz4.block and
        zlib release the GIL, so the encoding runs in parallel. Returns
        the seqs."""
        import concurrent.futures
        import os
        waveforms = list(waveforms)
        infos = [self.describe(key) for key, *_ in waveforms]

        def encode(args):
            (key, samples, _t0, _ev), info = args
            arr = np.ascontiguousarray(np.asarray(samples, dtype=info["dtype"]).reshape(-1))
            raw = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
            stored = _chunks.encode(raw, arr.dtype.itemsize, info["filters"])
            return _chunks.payload(info["id"], [(stored, 0, len(raw))]), dtype_code(arr.dtype)

        with concurrent.futures.ThreadPoolExecutor(threads or os.cpu_count()) as pool:
            encoded = list(pool.map(encode, zip(waveforms, infos)))
        return [self._send(DATA, key, payload, code, to_ns(t0), int(event_id), chunks=True)
                for (key, _s, t0, event_id), (payload, code) in zip(waveforms, encoded)]

    def send_chunk(self, key, samples, t0, event_id=0, *, corrupt=None):
        """Encode `samples` (whole chunks of channel `key`: a records
        waveform, or a whole number of a stream channel's chunks) with the
        channel's pipeline (describe()) and send them as one pre-compressed
        DATA frame. `corrupt`, for tests: a function given each encoded
        chunk that returns the bytes to send instead."""
        info = self.describe(key)
        arr = np.ascontiguousarray(np.asarray(samples, dtype=info["dtype"]).reshape(-1))
        if arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        n = info["chunk"]
        if not len(arr) or len(arr) % n:
            raise ValueError(f"{key}: {len(arr)} samples are not whole chunks of {n}")
        chunks = []
        for at in range(0, len(arr), n):
            raw = arr[at:at + n].tobytes()
            stored = _chunks.encode(raw, arr.dtype.itemsize, info["filters"])
            if corrupt is not None:
                stored = corrupt(stored)
            chunks.append((stored, 0, len(raw)))
        payload = _chunks.payload(info["id"], chunks)
        return self._send(DATA, key, payload, dtype_code(arr.dtype), to_ns(t0),
                          int(event_id), chunks=True)

    def event(self, stream, fields, t0, event_id):
        """Send the scalar fields of event `event_id` (≠ 0) of `stream` as an
        EVENT frame; `fields` is a dict (see field_set). Returns the seq."""
        if not event_id:
            raise ValueError("an EVENT frame needs an event_id other than 0")
        if not stream:
            raise ValueError("EVENT frames need a stream name")
        return self._send(EVENT, stream, field_set(fields), 0, to_ns(t0), int(event_id))

    def poll(self):
        """Read the ACKs that have arrived, without blocking; reconnect and
        replay if the recorder closed the connection. Returns durable_seq."""
        self._read_acks(0.0)
        return self.durable_seq

    def wait(self, seq=None, timeout=None):
        """Block until the recorder acknowledged `seq` (default: the last
        frame sent), reconnecting and replaying as needed. ACKs come after
        the recorder's flush (`output.flush`, default 1 s). Returns
        durable_seq; raises TimeoutError."""
        target = self.last_seq if seq is None else seq
        if self._sock is None:
            raise ConnectionError("sender is closed")
        if not self.ack:
            return self.durable_seq
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while self.durable_seq < target:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no ACK for seq {target} (durable up to "
                                   f"{self.durable_seq})")
            self._read_acks(left)
        return self.durable_seq

    @property
    def pending(self):
        """Number of frames sent and not yet acknowledged (kept for replay)."""
        return len(self._kept)

    def close(self, wait=True, timeout=None):
        """Wait for the last ACK (unless wait=False), then close."""
        try:
            if wait and self._sock is not None:
                self.wait(timeout=timeout)
        finally:
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        self.close(wait=exc_type is None)

    # -- frames --

    def _send(self, ftype, key, payload, dtype, t0, event_id, chunks=False):
        if self._sock is None:
            raise ConnectionError("sender is closed")
        seq = self.last_seq + 1
        frame = encode_frame(ftype, key, payload, dtype, seq, t0, event_id, crc=self.crc,
                             ack=self.ack, chunks=chunks)
        self._read_acks(0.0)   # notices a closed connection before writing to it
        if self.ack:
            self._make_room(len(frame))
            self._kept.append((seq, frame))
            self._kept_bytes += len(frame)
        self.last_seq = seq
        self._write(frame)     # if that finds the connection closed, the replay sends it
        return seq

    def _make_room(self, size):
        deadline = time.monotonic() + self.timeout
        while self._kept and (len(self._kept) >= self.replay_frames
                              or self._kept_bytes + size > self.replay_bytes):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"replay buffer full ({len(self._kept)} frames, "
                                   f"{self._kept_bytes} bytes) and no ACK frees it")
            self._read_acks(left)

    def _write(self, frame):
        try:
            self._sock.sendall(frame)
        except _CONNECTION_LOST:
            self._lost()

    # -- ACKs --

    def _read_acks(self, timeout):
        """Read what the recorder sent within `timeout` s; handle ACKs."""
        if self._sock is None:
            return
        ready, _, _ = select.select([self._sock], [], [], max(timeout, 0.0))
        if not ready:
            return
        try:
            data = self._sock.recv(65536)
        except (ConnectionResetError, ConnectionAbortedError):
            data = b""
        if not data:
            self._lost()
            return
        self._rbuf += data
        while len(self._rbuf) >= HEADER.size:
            magic, version, ftype, _dt, flags, key_len, _res, payload_len, seq, _t0, _ev = \
                HEADER.unpack_from(self._rbuf)
            if magic != MAGIC or version != VERSION or ftype not in (ACK, DESCRIBE, ERROR):
                raise ProtocolError(f"recorder sent a frame of type {ftype} "
                                    f"(magic {magic!r}, version {version}); only ACK, "
                                    "DESCRIBE or ERROR expected")
            size = HEADER.size + key_len + payload_len + (4 if flags & FLAG_CRC else 0)
            if len(self._rbuf) < size:
                break
            key = self._rbuf[HEADER.size:HEADER.size + key_len].decode()
            payload = self._rbuf[HEADER.size + key_len:HEADER.size + key_len + payload_len]
            self._rbuf = self._rbuf[size:]
            if ftype == ACK:
                self._acknowledged(seq)
            elif ftype == DESCRIBE:
                self._pipelines[key] = _parse_describe(payload.decode())
            else:
                self.refused = f"seq {seq} ({key}): {payload.decode()}"

    def _acknowledged(self, seq):
        if seq <= self.durable_seq:
            return
        self.durable_seq = seq
        self._fruitless = 0
        while self._kept and self._kept[0][0] <= seq:
            _, frame = self._kept.popleft()
            self._kept_bytes -= len(frame)

    # -- connection --

    def _connect(self, deadline):
        delay = 0.05
        while True:
            sock = socket.socket(self.family, socket.SOCK_STREAM)
            try:
                sock.settimeout(max(1.0, min(10.0, deadline - time.monotonic())))
                sock.connect(self.sockaddr)
                break
            except OSError as e:
                sock.close()
                if time.monotonic() + delay > deadline:
                    raise ConnectionError(f"cannot connect to the recorder at "
                                          f"{self.sockaddr}: {e}") from e
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
        sock.settimeout(self.timeout)
        self._sock = sock
        self._rbuf = b""
        self._pipelines = {}   # the recorder may have restarted with another schema
        # The recorder takes the first frame's seq as its baseline; the HELLO
        # goes just below the first frame that follows, so no gap is counted.
        first = self._kept[0][0] if self._kept else self.last_seq + 1
        fields = {"token": self.token} if self.token is not None else {}
        hello_payload = field_set(fields) if fields else b""
        try:
            sock.sendall(encode_frame(HELLO, self.name, hello_payload, 0, first - 1,
                                      crc=self.crc))
            for _, frame in list(self._kept):
                sock.sendall(frame)
        except _CONNECTION_LOST:
            self._lost()

    def _lost(self):
        """The recorder closed the connection: reconnect and replay what it
        has not acknowledged. After an ERROR frame nothing is replayed: the
        recorder refused a frame and would refuse it again."""
        if self.refused is not None:
            if self._sock is not None:
                self._sock.close()
                self._sock = None
            raise RefusedError(self.refused)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._fruitless += 1
        if self._fruitless > self.max_replays:
            raise ConnectionError(f"the recorder closed the connection {self._fruitless} "
                                  f"times in a row without acknowledging anything "
                                  f"(durable up to seq {self.durable_seq}; "
                                  f"{len(self._kept)} frames unacknowledged)")
        self.reconnects += 1
        self.replayed += len(self._kept)
        self._connect(time.monotonic() + self.reconnect_timeout)


_FIELD = re.compile(r'([a-z0-9_]+)=("([^"]*)"|[^,]*)(,|$)')


def _parse_describe(text):
    """The recorder's DESCRIBE answer (docs/protocols.md §1.5) as a dict."""
    fields = {m.group(1): (m.group(3) if m.group(3) is not None else m.group(2))
              for m in _FIELD.finditer(text)}
    if "error" in fields:
        return {"error": fields["error"]}
    filters = [f for f in fields.get("pipeline", "").split(",") if f]
    return {"layout": fields["layout"], "dtype": np.dtype(fields["dtype"]),
            "chunk": int(fields["chunk"].rstrip("i")), "filters": filters,
            "pipeline": fields.get("pipeline", ""), "id": int(fields["id"].rstrip("i"))}
