"""A file that cannot be created for a while loses nothing.

The output directory turns unwritable (EACCES), the process runs out of
descriptors (EMFILE) or the disk fails the create (EIO) across a roll, for
as long as it takes the senders to send 500 lines and 40 frames (the
create_fault shim, tests/tools/preload/create_fault.c, fails every file
creation in the output directory while a flag file exists). Like a full
disk this passes: the recorder holds the data in memory, says why in the
log and in status, keeps the senders' connections (ACKs wait), and when
files can be created again it writes everything, once. It used to drop
what arrived meanwhile (500 of 700 lines lost, exit 0).
"""
import errno
import os
import resource
import socket
import subprocess

import h5py
import numpy as np
import pytest

from recorder_fixture import ADC_STREAM, H5RECD, WEATHER_STREAM, preload_env
from recorder_fixture import recorder  # noqa: F401 (pytest fixture)
from reliability_helpers import PER_FRAME, AckingSender, frame_samples, wait_for

STREAMS = WEATHER_STREAM + ADC_STREAM
T0 = 1767225600


def lines(first, count):
    return "".join(f"weather,station=s{k % 7} temperature={k}.5 {T0 + k}000000000\n"
                   for k in range(first, first + count)).encode()


def stored(rec):
    """(temperatures of every weather row, {seq: samples} of board 'a')."""
    temps, frames = [], {}
    for path in rec.files():
        with h5py.File(path, "r") as f:
            for name, g in f.items():
                if name.startswith("s"):
                    temps += list(g["temperature"][...])
                elif name == "a":
                    starts, seqs, data = (g["adc0_frame_start"][...], g["adc0_frame_seq"][...],
                                          g["adc0"][...])
                    for k, seq in enumerate(seqs):
                        frames.setdefault(int(seq), []).append(
                            data[int(starts[k]):int(starts[k]) + PER_FRAME])
    return temps, frames


@pytest.mark.parametrize("code,swmr", [("EACCES", True), ("EACCES", False),
                                       ("EMFILE", True), ("EIO", True)])
def test_data_waits_for_a_file_that_cannot_be_created(recorder, tmp_path, code, swmr):
    flag = tmp_path / "unwritable"
    rec = recorder(STREAMS, listen=[{"protocol": "line", "transport": "tcp"},
                                    {"protocol": "frame", "transport": "tcp"}],
                   output={"flush": "200ms", "swmr": "true" if swmr else "false"},
                   env=None, start=False)
    rec.env.update(preload_env("create_fault", H5REC_CREATE_FAULT_DIR=rec.out,
                               H5REC_CREATE_FAULT_FLAG=flag,
                               H5REC_CREATE_FAULT_ERRNO=getattr(errno, code)))
    rec.start()
    line_sock = socket.create_connection(rec.bound[0][1], timeout=30)
    line_sock.sendall(lines(0, 200))
    wait_for(lambda: rec.status()["counters"]["lines"] == 200, what="200 lines")
    rec.control("flush")

    # the directory turns unwritable, and the file rolls: the next one
    # cannot be created
    flag.touch()
    rec.control("roll")
    line_sock.sendall(lines(200, 500))
    sender = AckingSender(rec.bound[1][1], "a", 40, 0.005).run()
    wait_for(lambda: rec.status()["counters"]["lines"] == 700, what="700 lines")
    st = wait_for(lambda: (lambda s: s if s["output"]["full"] else None)(rec.status()),
                  what="the output held")
    assert os.strerror(getattr(errno, code)) in st["output"]["reason"], st["output"]
    assert "create_fault: creating" in rec.log()
    assert sender.acked < sender.sent == 40  # no ACK for what is only in memory
    assert not sender.closed_by_peer
    # it stays so for a few flushes, each of which tries again
    errors = rec.status()["engine"]["errors"]
    wait_for(lambda: rec.status()["engine"]["errors"] >= errors + 3, what="three more attempts")

    flag.unlink()
    wait_for(lambda: not rec.status()["output"]["full"], what="the output to take data again")
    sender.wait_acked()
    assert sender.acked == sender.sent == 40 and not sender.closed_by_peer
    line_sock.sendall(lines(700, 1))  # the line connection was kept open too
    wait_for(lambda: rec.status()["counters"]["lines"] == 701, what="the last line")
    line_sock.close()
    sender.close()
    st = rec.status()
    assert st["counters"]["write_errors"] == 0, st["counters"]
    rec.stop()
    temps, frames = stored(rec)
    assert sorted(temps) == [k + 0.5 for k in range(701)]
    assert sorted(frames) == list(range(1, 41))
    for seq, copies in frames.items():
        assert len(copies) == 1, f"frame {seq} stored {len(copies)} times"
        np.testing.assert_array_equal(copies[0], frame_samples(seq))


def _nofile(limit):
    def apply():
        resource.setrlimit(resource.RLIMIT_NOFILE, limit)
    return apply


def test_max_connections_is_checked_against_the_descriptor_limit(recorder):
    """limits.max_connections 256 cannot be served under a hard
    RLIMIT_NOFILE of 200: h5recd refuses to start and says what to change
    (it used to start, and the connections took the descriptors the next
    file needed). Under a soft limit of 100 with a hard one of 4096 it
    raises the soft limit and starts."""
    rec = recorder(STREAMS, listen=[{"protocol": "line", "transport": "tcp"},
                                    {"protocol": "frame", "transport": "tcp"}], start=False)
    rec._assign_addresses()
    with open(rec.schema_path, "w") as f:
        f.write(rec._schema_text())
    res = subprocess.run([H5RECD, "-c", rec.schema_path], capture_output=True, text=True,
                         timeout=60, preexec_fn=_nofile((200, 200)))
    assert res.returncode != 0, res.stderr
    assert "limits.max_connections (256) needs 322 file descriptors" in res.stderr, res.stderr
    assert "RLIMIT_NOFILE allows 200" in res.stderr, res.stderr

    proc = subprocess.Popen([H5RECD, "-c", rec.schema_path, "-l", "info"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_nofile((100, 4096)))
    try:
        def soft():
            with open(f"/proc/{proc.pid}/limits") as f:
                row = next(line for line in f if line.startswith("Max open files"))
            return int(row.split()[3])
        wait_for(lambda: proc.poll() is not None or soft() == 4096,
                 what="the soft limit raised")
        assert proc.poll() is None
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "RLIMIT_NOFILE raised from 100 to 4096" in err, err
