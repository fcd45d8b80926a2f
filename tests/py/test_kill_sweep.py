"""A kill at any write loses nothing acknowledged and leaves every file readable.

One short run in which new groups keep appearing: four boards start
sending frames (with ACKs) 300 ms apart, so under SWMR each one makes the
recorder start a new file (built as .NAME.part, then renamed) at the next
flush (every 200 ms). The run makes about 140 pwrite64 calls, 25 fsyncs and
4 renames. The sweep runs it again and again under strace, which kills
h5recd (SIGKILL) on entry to the Nth call of one of those system calls
(`-e inject=SYSCALL:signal=KILL:when=N`), and after each kill checks:

  1. every file named *.h5 opens (SWMR read, or after `h5clear -s` on a
     copy, as docs/operations.md tells a user);
  2. every frame the recorder acknowledged is in one of them, sample for
     sample;
  3. nothing in them is garbage: every frame there is one that was sent.

The points swept: every fsync and rename, and every pwrite64 in CI steps
of 3 (6 in a sanitizer build), the start rotating with the day of the year
so that every point is swept over a few days; H5REC_KILL_SWEEP=full takes
every pwrite64 (about 5 minutes). Under the old design (groups created by
reopening the live file without SWMR) 10 of 500 points lost acknowledged
frames, 8 of them the whole file.

The same points again with an I/O error instead of a kill
(`inject=SYSCALL:error=EIO:when=N`, that one call fails): the recorder goes
on, acknowledges nothing that the failure may have cost (a failed write or
fsync ends the file, a file that could not be built is built again from
memory), stops cleanly (exit 0), and every file opens as it is, without
`h5clear`.
"""
import atexit
import datetime
import os
import re
import shutil
import tempfile
import threading
import time

import h5py
import numpy as np
import pytest

from reliability_helpers import (AckingSender, Daemon, PER_FRAME, frame_samples, free_port,
                                 open_killed)

BOARDS = 4
FRAMES = 15
SCHEMA = """\
name: sweep
output: {{ directory: "{out}", file: "sweep-{{seq}}.h5", flush: 200ms }}
control: {{ socket: "{control}" }}
listen:
  - {{ protocol: frame, transport: tcp, address: "127.0.0.1:{port}" }}
streams:
  - name: adc
    match: {{ key: "{{board}}/{{channel}}" }}
    group: "/{{board}}"
    layout: stream
    defaults: {{ dtype: int16, dt: 1.0e-6, chunk: 4096, compression: deflate }}
    channels: {{ adc0: {{}} }}
"""


def points(sparser=1):
    """(syscall, N) to kill at; SPARSER times fewer writes than the kill
    sweep takes (the start moves with the day, so CI covers them all)."""
    step = (6 if os.environ.get("H5REC_SANITIZED") else 3) * sparser
    if os.environ.get("H5REC_KILL_SWEEP") == "full":
        step = 1
    start = 1 + datetime.date.today().timetuple().tm_yday % step
    return ([("fsync", n) for n in range(1, 26)] + [("renameat2", n) for n in range(1, 5)]
            + [("pwrite64", n) for n in range(start, 145, step)])


SOCKDIR = tempfile.mkdtemp(prefix="h5sweep-")
atexit.register(shutil.rmtree, SOCKDIR, ignore_errors=True)


def run_once(tmp_path, syscall, when, fault="signal=KILL"):
    """The run, with FAULT at the WHENth SYSCALL; returns (senders, files,
    exit status, work, daemon)."""
    work = tmp_path / f"{syscall}-{when}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    port = free_port()
    # short (a socket path has 108 bytes), in a directory of our own: the
    # recorder refuses one others can create names in, such as /tmp
    control = os.path.join(SOCKDIR, "control.sock")
    # LeakSanitizer cannot run under ptrace: a sanitized h5recd that the
    # run does not kill would fail its exit check
    env = {"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0"}
    daemon = Daemon(work, SCHEMA.format(out=work / "out", control=control, port=port),
                    control, ports=(port,), args=["--grace", 100], env=env,
                    wrapper=["strace", "-f", "-qq", "-o", "/dev/null", "-e", f"trace={syscall}",
                             "-e", f"inject={syscall}:{fault}:when={when}"])
    daemon.start()
    senders, threads = [], []
    try:
        for k in range(BOARDS):
            if not daemon.running():
                break
            try:
                sender = AckingSender(("127.0.0.1", port), f"b{k}", FRAMES, 0.02)
            except OSError:
                break
            senders.append(sender)
            threads.append(threading.Thread(target=sender.run))
            threads[-1].start()
            time.sleep(0.3)
        for t in threads:
            t.join()
        for s in senders:
            s.wait_acked(timeout=10)
    finally:
        for s in senders:
            s.close()
        # the fault may also come while it stops (the last flush, the close)
        status = daemon.stop()
    files = sorted((work / "out").glob("*.h5")) if (work / "out").exists() else []
    return senders, files, status, work, daemon


def check(senders, files, work):
    """The three checks of the module docstring; returns the frames found."""
    found = {}
    for i, path in enumerate(files):
        f, _how = open_killed(str(path), str(work / "scratch" / str(i)))
        with f:
            for board in f:
                g = f[board]
                seqs, starts = g["adc0_frame_seq"][...], g["adc0_frame_start"][...]
                data = g["adc0"][...]
                for k in range(min(len(seqs), len(starts))):
                    seq, s = int(seqs[k]), int(starts[k])
                    got = data[s:s + PER_FRAME]
                    assert 1 <= seq <= FRAMES, f"{path}: /{board} frame seq {seq} never sent"
                    if len(got) == PER_FRAME and np.array_equal(got, frame_samples(seq)):
                        found.setdefault(board, set()).add(seq)
    for s in senders:
        missing = [q for q in range(1, s.acked + 1) if q not in found.get(s.board, ())]
        assert not missing, f"{s.board}: ACKed frames in no file: {missing}"
    return found


@pytest.mark.parametrize("syscall,when", points())
def test_kill_at_a_write(tmp_path, syscall, when):
    senders, files, status, work, daemon = run_once(tmp_path, syscall, when)
    assert status in (0, -9), daemon.log()
    killed = status == -9
    check(senders, files, work)
    # nothing is left half-built under a real name: .part files hold nothing
    # acknowledged, and every *.h5 opened above
    assert all(not p.name.startswith(".") for p in files)
    if not killed:
        # the run made fewer calls than WHEN: all of it is stored
        assert all(s.acked == s.sent == FRAMES for s in senders)


@pytest.mark.parametrize("syscall,when", points(sparser=2))
def test_io_error_at_a_write(tmp_path, syscall, when):
    senders, files, status, work, daemon = run_once(tmp_path, syscall, when,
                                                    fault="error=EIO")
    # exit 1 only when the last close failed, and says so; a file HDF5
    # could not close (named in the log) makes the stop fail too: a clean
    # stop (0) leaves no file open for writing
    unclosed = re.findall(r"(\S+\.h5)(?:: closing \(HDF5| could not be closed)", daemon.log())
    assert status in (0, 1), daemon.log()
    if status == 1 or unclosed:
        assert status == 1 and "error: closing the output file" in daemon.log(), daemon.log()
    check(senders, files, work)
    for path in files:  # every other file opens without h5clear
        if str(path) not in unclosed:
            h5py.File(path, "r").close()
    assert all(not p.name.startswith(".") for p in files)
    if not any(s.acked < s.sent for s in senders):
        return  # the failure cost nothing acknowledged, or came after the last ACK
    assert "the file ends here" in daemon.log() or "flush failed" in daemon.log(), daemon.log()
