"""Acceptance: what the daemon does with input that is valid on the wire but
does not fit the schema or the sender's own sequence (SPEC §2, §3).

- seq gaps are counted as lost frames and the frame is kept; a seq that goes
  backwards is kept too (docs/protocols.md §1.1);
- limits.max_groups bounds the groups a peer can create;
- records: a waveform of the wrong length and an EVENT whose payload is not a
  field set close the sender's connection, keeping what came before;
- undeclared line fields are dropped (or reject the line with
  `unknown_fields: error`).
"""
import re
import socket

import h5py
import numpy as np

from recorder_fixture import DATA, EVENT, SEC, T0, encode_frame
from recorder_fixture import recorder  # noqa: F401 (pytest fixture)

STREAMS = """
- name: dust
  match: { key: "dust/{channel}" }
  group: /dust
  layout: records
  samples: 100
  dt: 1.0e-6
  event_fields: { mass: float32 }
  channels: { a: { dtype: float32 } }
- name: adc
  match: { key: "{board}/{channel}" }
  group: "/{board}"
  layout: stream
  defaults: { dtype: int16, dt: 1.0e-6, chunk: 4096 }
  channels: { adc0: {} }
- name: weather
  match: { measurement: weather }
  group: "/st{station}"
  layout: table
  defaults: { dtype: float32, chunk: 64 }
  channels: { temperature: {} }
- name: strict
  match: { measurement: strict }
  group: "/strict{station}"
  layout: table
  unknown_fields: error
  defaults: { dtype: float32, chunk: 64 }
  channels: { temperature: {} }
"""
LISTEN = [{"protocol": "frame", "transport": "tcp"}, {"protocol": "line", "transport": "tcp"}]


def connect(rec, i):
    sock = socket.create_connection(("127.0.0.1", rec.port(i)), timeout=5)
    return sock, "127.0.0.1:%d" % sock.getsockname()[1]


def closed_by_peer(sock, timeout=5):
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def finish(sock):
    sock.shutdown(socket.SHUT_WR)
    assert closed_by_peer(sock)
    sock.close()


def test_seq_gaps_and_backwards_are_kept(recorder):
    rec = recorder(STREAMS, listen=LISTEN)
    sock, peer = connect(rec, 0)
    seqs = [10, 11, 14, 12, 13]
    for i, seq in enumerate(seqs):
        sock.sendall(encode_frame(DATA, "g/adc0", np.full(10, i, np.int16).tobytes(), dtype=3,
                                  seq=seq, t0=T0 + i * SEC))
    finish(sock)
    log = rec.stop()
    assert re.search(rf"lost_frames: {re.escape(peer)}: 2 frames missing before seq 14", log)
    with h5py.File(rec.the_file(), "r") as f:
        np.testing.assert_array_equal(f["g/adc0_frame_seq"][...], seqs)
        np.testing.assert_array_equal(f["g/adc0"][...], np.repeat(np.arange(5), 10))


def test_max_groups(recorder):
    rec = recorder(STREAMS, listen=LISTEN, limits={"max_groups": 3})
    lines, lpeer = connect(rec, 1)
    lines.sendall("".join(f"weather,station={i} temperature={i} {T0}\n"
                          for i in range(5)).encode())
    # refused where the group is registered (the line named) or, when the
    # lines came in one read, by the writer (the group named)
    rec.wait_log(rf"group_limit: (data from )?{re.escape(lpeer)}.*(line 4 skipped|/st4: not added)")
    frames, fpeer = connect(rec, 0)
    frames.sendall(encode_frame(DATA, "board/adc0", b"\0\0", dtype=3, seq=1, t0=T0))
    assert closed_by_peer(frames), "a frame sender over max_groups is refused"
    frames.close()
    rec.wait_log(rf"group_limit: (data from )?{re.escape(fpeer)}.*(frame at offset 0|/board:)")
    # The line connection stays open and its known groups still work.
    lines.sendall(f"weather,station=1 temperature=9 {T0 + SEC}\n".encode())
    finish(lines)
    rec.stop()
    with h5py.File(rec.the_file(), "r") as f:
        assert sorted(f.keys()) == ["st0", "st1", "st2"]
        np.testing.assert_array_equal(f["st1/temperature"][...], np.float32([1, 9]))


def test_records_refusals_close_the_sender(recorder):
    rec = recorder(STREAMS, listen=LISTEN)
    good = np.arange(100, dtype=np.float32)
    sock, peer = connect(rec, 0)
    sock.sendall(encode_frame(EVENT, "dust", b"mass=2.5", seq=1, t0=T0, event_id=1)
                 + encode_frame(DATA, "dust/a", good.tobytes(), dtype=9, seq=2, t0=T0,
                                event_id=1)
                 + encode_frame(DATA, "dust/a", good[:99].tobytes(), dtype=9, seq=3, t0=T0,
                                event_id=2))
    assert closed_by_peer(sock)
    sock.close()
    rec.wait_log(rf"bad_data: {re.escape(peer)}: .*waveform of 99 samples")
    sock, peer = connect(rec, 0)
    sock.sendall(encode_frame(EVENT, "dust", b"mass=", seq=1, t0=T0, event_id=3))
    assert closed_by_peer(sock)
    sock.close()
    rec.wait_log(rf"bad_data: {re.escape(peer)}: EVENT frame at offset 0: field set")
    rec.stop()
    with h5py.File(rec.the_file(), "r") as f:
        np.testing.assert_array_equal(f["dust/event_id"][...], [1])
        np.testing.assert_array_equal(f["dust/mass"][...], np.float32([2.5]))
        np.testing.assert_array_equal(f["dust/a"][...], good[None, :])


def test_unknown_fields(recorder):
    rec = recorder(STREAMS, listen=LISTEN)
    sock, peer = connect(rec, 1)
    sock.sendall(f"weather,station=x temperature=1,colour=\"red\",wind=3 {T0}\n"
                 f"strict,station=y temperature=1,wind=3 {T0}\n"
                 f"strict,station=y temperature=2 {T0 + SEC}\n".encode())
    finish(sock)
    log = rec.stop()
    assert re.search(rf"unknown_fields: {re.escape(peer)}: line 2 skipped: 1 field", log), log
    with h5py.File(rec.the_file(), "r") as f:
        assert sorted(f["stx"].keys()) == ["temperature", "time"]
        np.testing.assert_array_equal(f["stx/temperature"][...], np.float32([1]))
        np.testing.assert_array_equal(f["stricty/time"][...], [T0 + SEC])
