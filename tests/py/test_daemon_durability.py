"""Acceptance: durability while the daemon runs (SPEC §6).

Data received is in the file within `output.flush`, visible to a SWMR
reader of the live file; an ACK names only data that is already there; and
a daemon killed with SIGKILL leaves a readable file with everything up to
its last flush.
"""
import socket
import time

import h5py
import numpy as np

from recorder_fixture import (ACK, DATA, FLAG_ACK, FLAG_CRC, HEADER, SEC, T0, WEATHER_STREAM,
                              encode_frame)
from recorder_fixture import recorder  # noqa: F401 (pytest fixture)

STREAMS = """
- name: adc
  match: { key: "{board}/{channel}" }
  group: "/{board}"
  layout: stream
  defaults: { dtype: int16, dt: 1.0e-6, chunk: 4096 }
  channels: { adc0: {} }
- name: weather
  match: { measurement: weather }
  group: "/{station}"
  layout: table
  defaults: { dtype: float32, chunk: 64 }
  channels: { temperature: {} }
"""
LISTEN = [{"protocol": "frame", "transport": "tcp"}, {"protocol": "line", "transport": "tcp"}]


def read_live(path, dataset):
    with h5py.File(path, "r", swmr=True) as f:
        return f[dataset][...] if dataset in f else None


def recv_ack(sock, timeout=5.0):
    sock.settimeout(timeout)
    buf = b""
    while len(buf) < HEADER.size:
        chunk = sock.recv(HEADER.size - len(buf))
        assert chunk, "connection closed while waiting for an ACK"
        buf += chunk
    magic, version, ftype, _, _, key_len, _, payload_len, seq, _, _ = HEADER.unpack(buf)
    assert (magic, version, ftype, key_len, payload_len) == (b"H5RF", 1, ACK, 0, 0), buf
    return seq


def test_ack_means_in_the_file(recorder):
    rec = recorder(STREAMS, listen=LISTEN, output={"flush": "200ms"})
    with socket.create_connection(("127.0.0.1", rec.port(0)), timeout=5) as sock:
        sent = []
        for seq in range(1, 6):
            samples = (np.arange(3000) * seq).astype(np.int16)
            sent.append(samples)
            sock.sendall(encode_frame(DATA, "b/adc0", samples.tobytes(), dtype=3, seq=seq,
                                      t0=T0 + seq * SEC, flags=FLAG_CRC | FLAG_ACK))
            acked = recv_ack(sock)
            assert acked == seq
            # Acknowledged means durable: a reader sees it now.
            live = read_live(rec.the_file(), "b/adc0")
            assert live is not None and len(live) == 3000 * seq, (seq, live)
            np.testing.assert_array_equal(live, np.concatenate(sent))
    rec.stop()


def test_flush_period_and_sigkill(recorder):
    rec = recorder(STREAMS, listen=LISTEN, output={"flush": "200ms"})
    with socket.create_connection(("127.0.0.1", rec.port(1)), timeout=5) as sock:
        sock.sendall("".join(f"weather,station=s temperature={i} {T0 + i * SEC}\n"
                             for i in range(100)).encode())
        time.sleep(0.8)  # well past one flush period
        live = read_live(rec.the_file(), "s/temperature")
        assert live is not None, "nothing visible after a flush period"
        np.testing.assert_array_equal(live, np.arange(100, dtype=np.float32))
        np.testing.assert_array_equal(read_live(rec.the_file(), "s/time"),
                                      T0 + np.arange(100) * SEC)
        sock.sendall("".join(f"weather,station=s temperature={i} {T0 + i * SEC}\n"
                             for i in range(100, 150)).encode())
        time.sleep(0.8)
        rec.proc.kill()
        rec.proc.wait()
    # The killed writer's file still opens (SWMR) with all flushed rows.
    path = rec.the_file()
    with h5py.File(path, "r", swmr=True) as f:
        np.testing.assert_array_equal(f["s/temperature"][...], np.arange(150, dtype=np.float32))
        np.testing.assert_array_equal(f["s/time"][...], T0 + np.arange(150) * SEC)


def test_restart_names_the_file_left_open(recorder):
    """After a SIGKILL the restarted recorder says which file was left
    marked open for writing and how to clear it; after a clean stop it says
    nothing of the kind."""
    rec = recorder(WEATHER_STREAM, listen=[{"protocol": "line", "transport": "tcp"}],
                   output={"flush": "100ms"})
    with socket.create_connection(rec.bound[0][1], timeout=5) as s:
        s.sendall(f"weather,station=a temperature=1 {T0}\n".encode())
    rec.control("flush")
    left = rec.files()
    assert len(left) == 1
    rec.proc.kill()
    rec.proc.wait()
    rec.start()
    text = rec.log()
    assert f"{left[0]} is still marked as open for writing" in text, text
    assert f"h5clear -s {left[0]}" in text
    with socket.create_connection(rec.bound[0][1], timeout=5) as s:
        s.sendall(f"weather,station=a temperature=2 {T0 + SEC}\n".encode())
    rec.stop()
    rec.start()
    assert "marked as open for writing" not in rec.log()
    rec.stop()
