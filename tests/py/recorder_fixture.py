"""Shared machinery of the daemon acceptance tests (test_daemon_*.py).

A test describes the streams it needs; `Recorder` writes a schema into the
test's temporary directory with free loopback ports and its own output and
control-socket paths, starts the real `h5recd -c SCHEMA -l debug`, waits
until the log says "recording" and every stream port accepts a connection,
and stops it with SIGTERM, asserting exit status 0. The `recorder` fixture
kills any daemon a failed test left running and prints its log, so a failure
always shows what the daemon said.

Also here: a frame encoder and parser written from SPEC §3.1 (independent
of the C code, so a test compares the daemon against the specification, not
against itself), CRC-32C, VmRSS sampling, and running the real client.
"""
import glob
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import textwrap
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("H5REC_SOURCE_DIR", os.path.dirname(os.path.dirname(HERE)))
BUILD = os.environ.get("H5REC_BUILD_DIR", os.path.join(SOURCE, "build-e2e"))
H5RECD = os.environ.get("H5RECD", os.path.join(BUILD, "src", "h5recd"))
H5REC = os.environ.get("H5REC", os.path.join(BUILD, "src", "h5rec"))
PLUGIN_DIR = os.environ.get("H5REC_PLUGIN_DIR", os.path.join(BUILD, "plugins"))
DEBIAN_PLUGIN_DIR = "/usr/lib/x86_64-linux-gnu/hdf5/serial/plugins"
PYTHON = "/usr/bin/python3"
# "address" when the programs under test are built with ASan+UBSan
# (tests/CMakeLists.txt sets it in an H5REC_SANITIZE build): they then use
# more memory and time, and a test that bounds either says by how much.
SANITIZED = os.environ.get("H5REC_SANITIZED", "")

# h5py in this process reads LZ4 datasets with our plugin; set before HDF5
# is initialised (the first import of h5py).
os.environ.setdefault("HDF5_PLUGIN_PATH", PLUGIN_DIR)

# A fixed, recent time (2026-01-01T00:00:00Z) so that runs are reproducible.
T0 = 1767225600000000000
SEC = 1000000000

START_TIMEOUT = 15.0
STOP_TIMEOUT = 60.0


# ---- ports and processes -------------------------------------------------------

# Streams the tests share (the `streams:` body of a schema): frames of
# int16 samples keyed "board/adc0", and weather lines with a temperature.
ADC_STREAM = """
- name: adc
  match: { key: "{board}/{channel}" }
  group: "/{board}"
  layout: stream
  defaults: { dtype: int16, dt: 1.0e-6, chunk: 4096 }
  channels: { adc0: {} }
"""
WEATHER_STREAM = """
- name: weather
  match: { measurement: weather }
  group: "/{station}"
  layout: table
  channels: { temperature: { dtype: float32 } }
"""


def free_port(kind=socket.SOCK_STREAM, family=socket.AF_INET, host="127.0.0.1"):
    """A port the kernel just gave out for (kind, host); free again on return."""
    with socket.socket(family, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def vm_rss_kib(pid):
    """VmRSS of a process in KiB, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


class RssSampler:
    """Samples a process's VmRSS every `period` seconds in a thread."""

    def __init__(self, pid, period=0.05):
        self.pid, self.period = pid, period
        self.samples = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            rss = vm_rss_kib(self.pid)
            if rss is not None:
                self.samples.append((time.monotonic(), rss))
            self._stop.wait(self.period)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def peak_kib(self):
        return max(r for _, r in self.samples)


def preload_env(shim, **settings):
    """Environment for h5recd with the LD_PRELOAD shim tests/tools/preload/
    SHIM.c, and its settings (name=value)."""
    path = os.path.join(os.environ.get("H5REC_TOOLS_DIR", ""), shim + ".so")
    assert os.path.exists(path), f"{path}: build the tests (tests/tools/preload)"
    # a sanitized h5recd: libasan then does not come first, which is fine here
    return dict({k: str(v) for k, v in settings.items()}, LD_PRELOAD=path,
                ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0")


def run_client(args, timeout=120, check=True, **kw):
    """Run the real `h5rec` client; returns the CompletedProcess."""
    res = subprocess.run([H5REC] + [str(a) for a in args], capture_output=True, text=True,
                         timeout=timeout, **kw)
    if check:
        assert res.returncode == 0, (f"h5rec {' '.join(map(str, args))} failed "
                                     f"({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return res


def start_client(args, **kw):
    """Start the real `h5rec` client in the background."""
    return subprocess.Popen([H5REC] + [str(a) for a in args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def finish_client(proc, timeout=120):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"h5rec failed ({proc.returncode}):\n{out}\n{err}"
    return out


SENT_RE = re.compile(r"sent (\d+) frames, (\d+) bytes.*?"
                     r"(?:durable up to seq (\d+) of (\d+))?$", re.M)


def sent_summary(stdout):
    """(frames, bytes, acked_seq, last_seq) from the client's last line;
    the seqs are None when the recorder acknowledged nothing."""
    m = SENT_RE.search(stdout)
    assert m, f"no 'sent ...' summary in the client's output:\n{stdout}"
    frames, nbytes, acked, last = m.groups()
    return (int(frames), int(nbytes), None if acked is None else int(acked),
            None if last is None else int(last))


# ---- the daemon ------------------------------------------------------------------

class Recorder:
    """One h5recd on loopback ports with its own schema and output directory.

    listen: list of dicts {protocol, transport[, host, token, precision, ...]};
    the address is filled in (host 127.0.0.1 unless given, e.g. "::1").
    `address(i)` is the client address of listener i ("tcp:127.0.0.1:PORT",
    "tcp:[::1]:PORT", "unix:PATH"), `port(i)` its port."""

    def __init__(self, workdir, streams, listen, limits=None, output=None, name="e2e",
                 args=(), env=None, top=""):
        self.workdir = str(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.streams = textwrap.dedent(streams).strip("\n")
        self.listen = [dict(l) for l in listen]
        self.limits = limits or {}
        self.output = output or {}
        self.name = name
        self.top = textwrap.dedent(top).strip("\n")  # more top-level YAML (e.g. attrs)
        self.args = [str(a) for a in args]
        self.env = dict(os.environ, **(env or {}))
        self.out = os.path.join(self.workdir, "out")
        self.schema_path = os.path.join(self.workdir, "schema.yaml")
        self.log_path = os.path.join(self.workdir, "h5recd.log")
        # Unix socket paths must stay under 108 bytes: keep them short.
        self.sockdir = tempfile.mkdtemp(prefix="h5e2e-", dir="/tmp")
        self.proc = None
        self.returncode = None
        self.addresses = []

    # -- schema --

    def _assign_addresses(self):
        self.addresses = []
        self.bound = []
        for i, l in enumerate(self.listen):
            if l["transport"] == "unix":
                path = os.path.join(self.sockdir, f"l{i}.sock")
                self.bound.append(("unix", path))
                self.addresses.append(f"unix:{path}")
            else:
                kind = socket.SOCK_STREAM if l["transport"] == "tcp" else socket.SOCK_DGRAM
                host = l.get("host", "127.0.0.1")
                v6 = ":" in host
                port = free_port(kind, socket.AF_INET6 if v6 else socket.AF_INET, host)
                self.bound.append((l["transport"], (host, port)))
                shown = f"[{host}]" if v6 else host
                self.addresses.append(f"{l['transport']}:{shown}:{port}")

    def _schema_text(self):
        lines = [f"name: {self.name}", "output:", f"  directory: {self.out}"]
        if "file" not in self.output:
            lines.append('  file: "{name}-{seq}.h5"')
        lines += [f"  {k}: {v}" for k, v in self.output.items()]
        lines += ["control:", f"  socket: {os.path.join(self.sockdir, 'control.sock')}",
                  "listen:"]
        for l, (transport, where) in zip(self.listen, self.bound):
            address = (where if transport == "unix" else
                       f"[{where[0]}]:{where[1]}" if ":" in where[0] else f"{where[0]}:{where[1]}")
            extra = "".join(f", {k}: {v}" for k, v in l.items()
                            if k not in ("protocol", "transport", "host"))
            lines.append(f'  - {{ protocol: {l["protocol"]}, transport: {transport}, '
                         f'address: "{address}"{extra} }}')
        if self.limits:
            lines.append("limits: { " + ", ".join(f"{k}: {v}" for k, v in self.limits.items())
                         + " }")
        if self.top:
            lines.append(self.top)
        lines.append("streams:")
        lines.append(textwrap.indent(self.streams, "  "))
        return "\n".join(lines) + "\n"

    def address(self, i=0):
        return self.addresses[i]

    @property
    def control_socket(self):
        return os.path.join(self.sockdir, "control.sock")

    def control(self, *args, timeout=120):
        """`h5rec ARGS --socket` on this recorder's control socket."""
        return run_client([*args, "--socket", self.control_socket], timeout=timeout)

    def status(self):
        return json.loads(self.control("status", "--json").stdout)

    def port(self, i=0):
        return self.bound[i][1][1]

    # -- life --

    def start(self, attempts=3):
        for _ in range(attempts):
            self._assign_addresses()
            with open(self.schema_path, "w") as f:
                f.write(self._schema_text())
            log = open(self.log_path, "w")
            self.proc = subprocess.Popen([H5RECD, "-c", self.schema_path, "-l", "debug"]
                                         + self.args, stdout=log, stderr=subprocess.STDOUT,
                                         cwd=self.workdir, env=self.env)
            log.close()
            if self._wait_ready():
                return self
            self.proc.wait(timeout=10)
            text = self.log()
            if "in use" not in text:  # only a lost race for a port is retried
                raise AssertionError(f"h5recd did not start (exit {self.proc.returncode}):\n"
                                     f"{text}")
        raise AssertionError(f"h5recd could not bind its ports:\n{self.log()}")

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if re.search(r"notice: recording$", self.log(), re.M):
                break
            time.sleep(0.02)
        else:
            raise AssertionError(f"h5recd not ready within {START_TIMEOUT} s:\n{self.log()}")
        for transport, where in self.bound:
            if transport == "udp":
                continue
            family = (socket.AF_UNIX if transport == "unix" else
                      socket.AF_INET6 if ":" in where[0] else socket.AF_INET)
            while True:
                try:
                    with socket.socket(family, socket.SOCK_STREAM) as s:
                        s.settimeout(1)
                        s.connect(where)
                    break
                except OSError:
                    if time.monotonic() > deadline or self.proc.poll() is not None:
                        raise AssertionError(f"{where} does not accept connections:\n"
                                             f"{self.log()}")
                    time.sleep(0.02)
        return True

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, signum=signal.SIGTERM):
        self.proc.send_signal(signum)

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM, wait, assert exit 0; returns the log text."""
        if self.running():
            self.proc.send_signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def wait_exit(self, timeout=STOP_TIMEOUT):
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"h5recd did not exit within {timeout} s of SIGTERM:\n"
                                 f"{self.log()}")
        text = self.log()
        assert self.returncode == 0, f"h5recd exited with {self.returncode}:\n{text}"
        assert "stopped cleanly" in text, text
        return text

    def kill(self):
        if self.running():
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.sockdir, ignore_errors=True)

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, timeout=5.0):
        """Wait until the log matches `pattern` (a regex); returns the match."""
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.log(), re.M)
            if m:
                return m
            if time.monotonic() > deadline:
                raise AssertionError(f"log never matched {pattern!r}:\n{self.log()}")
            time.sleep(0.02)

    def files(self):
        return sorted(glob.glob(os.path.join(self.out, "*.h5")))

    def the_file(self):
        files = self.files()
        assert len(files) == 1, f"expected one output file, found {files}"
        return files[0]

    def recording(self):
        """Every output file read as one (see Recording)."""
        return Recording(self.files())


class Recording:
    """The files of one recording read as one, for tests whose groups appear
    over several flushes: under SWMR a group that first has data while a
    file is live goes into the next file, which the flush starts with every
    group of the last one (docs/engine.md). `rec[path][...]` is the
    concatenation along axis 0 of that dataset over the files that hold
    it, in file order (the sample_time axis of records, which is the same
    in every file, is taken once); `keys()` of a group are the union of
    its members in all files; `attrs` are the last file's."""

    def __init__(self, paths, prefix=""):
        assert paths, "no output file"
        self.paths, self.prefix = list(paths), prefix

    def _holding(self):
        import h5py
        out = []
        for p in self.paths:
            with h5py.File(p, "r") as f:
                if not self.prefix or self.prefix in f:
                    out.append(p)
        return out

    def __getitem__(self, key):
        if key is Ellipsis or isinstance(key, slice):
            return self.read()[key]
        path = f"{self.prefix}/{key}".strip("/")
        return Recording(self.paths, path)

    def __contains__(self, key):
        return bool(Recording(self.paths, f"{self.prefix}/{key}".strip("/"))._holding())

    def keys(self):
        import h5py
        names = set()
        for p in self._holding():
            with h5py.File(p, "r") as f:
                names.update((f[self.prefix] if self.prefix else f).keys())
        return sorted(names)

    @property
    def attrs(self):
        import h5py
        with h5py.File(self._holding()[-1], "r") as f:
            return dict((f[self.prefix] if self.prefix else f).attrs)

    def read(self):
        import h5py
        import numpy as np
        parts = []
        for p in self._holding():
            with h5py.File(p, "r") as f:
                parts.append(f[self.prefix][...])
        if self.prefix.endswith("sample_time"):
            return parts[0]
        return np.concatenate(parts) if parts else parts

    @property
    def shape(self):
        return self.read().shape

    @property
    def dtype(self):
        return self.read().dtype

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.fixture
def recorder(tmp_path):
    """Factory: recorder(streams=..., listen=[...], ...) -> started Recorder.
    Every daemon still running at teardown is killed and its log printed."""
    made = []

    def make(streams, listen, start=True, **kw):
        r = Recorder(tmp_path / f"recorder{len(made)}", streams, listen, **kw)
        made.append(r)
        return r.start() if start else r

    yield make
    for r in made:
        if r.running():
            print(f"--- h5recd {r.workdir} still running at teardown; killed")
        r.kill()
        print(f"--- log of h5recd in {r.workdir} ---\n{r.log()[-20000:]}")


# ---- frames (SPEC §3.1) ------------------------------------------------------------

HEADER = struct.Struct("<4sBBBBHHIQqQ")
assert HEADER.size == 40

DATA, EVENT, HELLO, ACK = 1, 2, 3, 4
FLAG_CRC, FLAG_ACK = 1, 2
DTYPES = {1: "i1", 2: "u1", 3: "<i2", 4: "<u2", 5: "<i4", 6: "<u4", 7: "<i8", 8: "<u8",
          9: "<f4", 10: "<f8"}
DTYPE_CODES = {"int8": 1, "uint8": 2, "int16": 3, "uint16": 4, "int32": 5, "uint32": 6,
               "int64": 7, "uint64": 8, "float32": 9, "float64": 10}


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data, crc=0):
    """CRC-32C (Castagnoli), reflected, init and final XOR 0xFFFFFFFF."""
    crc ^= 0xFFFFFFFF
    table = _CRC_TABLE
    for b in bytes(data):
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283


def encode_frame(ftype, key=b"", payload=b"", dtype=0, seq=1, t0=0, event_id=0,
                 flags=FLAG_CRC, magic=b"H5RF", version=1, reserved=0, key_len=None,
                 payload_len=None, crc=None):
    """A frame as SPEC §3.1 lays it out; every field can be forced wrong."""
    if isinstance(key, str):
        key = key.encode()
    payload = bytes(payload)
    header = HEADER.pack(magic, version, ftype, dtype, flags,
                         len(key) if key_len is None else key_len, reserved,
                         len(payload) if payload_len is None else payload_len, seq, t0,
                         event_id)
    body = header + key + payload
    if flags & FLAG_CRC:
        body += struct.pack("<I", crc32c(body) if crc is None else crc)
    return body


class Frame:
    __slots__ = ("offset", "type", "dtype", "flags", "seq", "t0", "event_id", "key",
                 "payload")

    def samples(self):
        import numpy as np
        return np.frombuffer(self.payload, dtype=DTYPES[self.dtype])


def parse_frames(buf, check_crc_below=4096):
    """Split a byte stream into frames, checking what SPEC §3.1 requires of
    each header. CRCs of frames up to `check_crc_below` bytes are verified
    (pure Python is too slow for megabytes of waveforms)."""
    view = memoryview(buf)
    frames, at = [], 0
    while at < len(buf):
        magic, version, ftype, dtype, flags, key_len, reserved, payload_len, seq, t0, \
            event_id = HEADER.unpack_from(buf, at)
        assert magic == b"H5RF" and version == 1 and reserved == 0, f"bad header at {at}"
        assert flags & ~3 == 0 and key_len <= 1024, f"bad header at {at}"
        f = Frame()
        f.offset, f.type, f.dtype, f.flags, f.seq, f.t0, f.event_id = \
            at, ftype, dtype, flags, seq, t0, event_id
        k = at + HEADER.size
        f.key = bytes(view[k:k + key_len]).decode()
        f.payload = view[k + key_len:k + key_len + payload_len]
        end = k + key_len + payload_len
        if flags & FLAG_CRC:
            if end - at <= check_crc_below:
                (trailer,) = struct.unpack_from("<I", buf, end)
                assert trailer == crc32c(view[at:end]), f"CRC mismatch in frame at {at}"
            end += 4
        assert end <= len(buf), f"stream ends inside the frame at {at}"
        frames.append(f)
        at = end
    return frames


def parse_field_set(text):
    """`mass=3.8e-17,velocity=9646.3` (floats only) -> {name: text}."""
    out = {}
    for part in text.split(","):
        k, _, v = part.partition("=")
        out[k] = v
    return out


def attr_str(value):
    """A string attribute as text, whether h5py gives str or bytes."""
    return value.decode() if isinstance(value, bytes) else str(value)
