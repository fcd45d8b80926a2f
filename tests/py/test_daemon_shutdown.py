"""Acceptance: SIGTERM stops the daemon without losing what was sent (SPEC §6).

The daemon must stop accepting connections, drain what its senders are still
sending (until EOF, or a quiet grace period), write everything, close the
file with exact extents and exit 0.
"""
import os
import socket
import time

import numpy as np

from recorder_fixture import (ACK, DATA, FLAG_ACK, FLAG_CRC, HELLO, T0, encode_frame,
                              finish_client, parse_frames, sent_summary, start_client)
from recorder_fixture import recorder  # noqa: F401 (pytest fixture)
from reliability_helpers import parse_frames_prefix

STREAM = """
- name: adc
  match: { key: "{board}/{channel}" }
  group: "/{board}"
  layout: stream
  defaults: { dtype: int16, dt: 1.0e-6, chunk: 65536 }
  channels: { adc0: {}, adc1: {} }
"""
LISTEN = [{"protocol": "frame", "transport": "tcp"}]
FRAME_INDEX = ("_frame_time", "_frame_start", "_frame_seq")


def test_sigterm_during_heavy_ingest_drains_everything(recorder, tmp_path):
    # A slowed writer and a small buffer keep the daemon busy ingesting for
    # a couple of seconds, so SIGTERM lands in the middle of it.
    rec = recorder(STREAM, listen=LISTEN, limits={"max_buffer": "8MiB", "max_frame": "1MiB"},
                   args=["--test-writer-delay-us", 2000])
    samples = 30 * 1024 * 1024 + 12345  # ~60 MB; neither frames nor chunks divide it
    data = np.random.default_rng(9).integers(-32768, 32767, samples, dtype=np.int16)
    big, tee = tmp_path / "big.bin", tmp_path / "sent.bin"
    data.tofile(big)

    sender = start_client(["send", "-t", rec.address(), "-k", "b0/adc1", "-d", "int16",
                           "-n", 32768, "--t0", T0, "--dt", "1e-6", "--tee", tee, big])
    deadline = time.monotonic() + 30
    while not (tee.exists() and tee.stat().st_size > 15 * 1024 * 1024):
        assert sender.poll() is None, sender.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    rec.signal()
    sent_at_signal = tee.stat().st_size
    assert sender.poll() is None, "the send finished before SIGTERM: nothing was tested"

    out = finish_client(sender, timeout=120)  # it reaches EOF: the daemon drained it
    frames, nbytes, acked, last = sent_summary(out)
    log = rec.wait_exit()
    assert nbytes > sent_at_signal
    assert acked == last == frames, out
    assert "stopping; draining" in log

    sent = [f for f in parse_frames(tee.read_bytes()) if f.type != HELLO]
    assert all(f.type == DATA and f.key == "b0/adc1" for f in sent)
    with rec.recording() as f:
        g = f["b0"]
        # Exact extents: as many samples and index rows as were sent, no fill.
        assert g["adc1"].shape == (samples,)
        for suffix in FRAME_INDEX:
            assert g["adc1" + suffix].shape == (len(sent),), suffix
            assert g["adc0" + suffix].shape == (0,), suffix
        assert g["adc0"].shape == (0,)
        np.testing.assert_array_equal(g["adc1"][...], np.concatenate([f.samples() for f in sent]))
        np.testing.assert_array_equal(g["adc1"][...], data)
        np.testing.assert_array_equal(g["adc1_frame_seq"][...], [f.seq for f in sent])
        np.testing.assert_array_equal(g["adc1_frame_time"][...], [f.t0 for f in sent])
        assert g["adc1"].attrs["end_time"] >= sent[-1].t0


def test_sigterm_refuses_new_connections_and_ends_quiet_ones(recorder):
    """A quiet sender is cut off after the grace period, keeping what it sent;
    nobody can connect once draining has started."""
    rec = recorder(STREAM, listen=LISTEN, args=["--grace", 500])
    samples = np.arange(1000, dtype=np.int16)
    with socket.create_connection(("127.0.0.1", rec.port()), timeout=5) as quiet:
        quiet.sendall(encode_frame(DATA, "b1/adc0", samples.tobytes(), dtype=3, seq=1, t0=T0))
        last_sent = time.monotonic()
        time.sleep(0.2)
        rec.signal()
        rec.wait_log(r"stopping; draining connections")
        try:
            socket.create_connection(("127.0.0.1", rec.port()), timeout=2).close()
            raise AssertionError("a new connection was accepted while draining")
        except ConnectionRefusedError:
            pass
        quiet.settimeout(10)
        try:
            assert quiet.recv(1) == b""
        except ConnectionResetError:
            pass
        quiet_for = time.monotonic() - last_sent
    rec.wait_exit()
    assert 0.45 < quiet_for < 5, f"connection closed after {quiet_for:.2f} s quiet (grace 0.5 s)"
    with rec.recording() as f:
        np.testing.assert_array_equal(f["b1/adc0"][...], samples)
        np.testing.assert_array_equal(f["b1/adc0_frame_time"][...], [T0])


def test_second_sigterm_stops_at_once_keeping_what_was_received(recorder, tmp_path):
    """TERM twice: connections are closed at once, but every frame received
    is written: the file holds a prefix of the stream, frame by frame, with
    a consistent frame index and exact extents."""
    rec = recorder(STREAM, listen=LISTEN, limits={"max_buffer": "8MiB", "max_frame": "1MiB"},
                   args=["--test-writer-delay-us", 2000])
    per_frame, samples = 32768, 30 * 1024 * 1024
    data = np.random.default_rng(11).integers(-32768, 32767, samples, dtype=np.int16)
    big = tmp_path / "big.bin"
    data.tofile(big)
    sender = start_client(["send", "-t", rec.address(), "-k", "b0/adc0", "-d", "int16",
                           "-n", per_frame, "--t0", T0, "--dt", "1e-6", big])
    deadline = time.monotonic() + 30
    while sender.poll() is None and time.monotonic() < deadline:
        # Wait until the daemon is well into the stream (back-pressure on).
        if rec.files() and os.path.getsize(rec.files()[0]) > 10 * 1024 * 1024:
            break
        time.sleep(0.01)
    assert sender.poll() is None, "the send finished before SIGTERM: nothing was tested"
    rec.signal()
    rec.wait_log(r"stopping; draining connections")
    rec.signal()
    started = time.monotonic()
    log = rec.wait_exit(timeout=30)
    assert "again: closing connections now" in log
    assert time.monotonic() - started < 10
    sender.communicate(timeout=30)
    assert sender.returncode != 0, "the sender was cut off, it must say so"

    with rec.recording() as f:
        g = f["b0"]
        stored = g["adc0"].shape[0]
        nframes = g["adc0_frame_start"].shape[0]
        assert 0 < stored < samples
        assert stored == nframes * per_frame, "whole frames only"
        for suffix in FRAME_INDEX:
            assert g["adc0" + suffix].shape == (nframes,)
        np.testing.assert_array_equal(g["adc0_frame_start"][...],
                                      np.arange(nframes) * per_frame)
        np.testing.assert_array_equal(g["adc0_frame_seq"][...], np.arange(2, nframes + 2))
        np.testing.assert_array_equal(g["adc0"][...], data[:stored])


def test_sigterm_drains_several_senders_of_both_protocols(recorder, tmp_path):
    """Two frame senders and a line sender are all mid-stream at SIGTERM;
    each is drained to its end and everything each sent is in the file."""
    rec = recorder(STREAM + """
- name: weather
  match: { measurement: weather }
  group: "/station{station}"
  layout: table
  defaults: { dtype: float32, chunk: 512 }
  channels: { temperature: {}, wind: {}, pressure: {}, humidity: {} }
""", listen=LISTEN + [{"protocol": "line", "transport": "tcp"}],
                   limits={"max_buffer": "8MiB", "max_frame": "1MiB"},
                   args=["--test-writer-delay-us", 2000])
    # 1024 frames at >= 2 ms each in the writer: the frame senders need 2 s
    # at least, the line sender 2 s, so all are mid-stream at 0.5 s even on
    # a loaded machine (1 ms once left too little margin under 8x load).
    samples = 8 * 1024 * 1024 + 777
    data = {}
    senders = []
    for i, board in enumerate(("p", "q")):
        data[board] = np.random.default_rng(20 + i).integers(-32768, 32767, samples,
                                                              dtype=np.int16)
        path = tmp_path / f"{board}.bin"
        data[board].tofile(path)
        senders.append(start_client(["send", "-t", rec.address(0), "-k", f"{board}/adc0",
                                     "-d", "int16", "-n", 16384, "--t0", T0, "--dt", "1e-6",
                                     path]))
    lines_tee = tmp_path / "lines.txt"
    senders.append(start_client(["simulate", "weather", "-t", rec.address(1), "--stations", 20,
                                 "--count", 4000, "--rate", 2000, "--t0", T0,
                                 "--tee", lines_tee]))
    time.sleep(0.5)
    assert all(s.poll() is None for s in senders), "a sender finished before SIGTERM"
    rec.signal()
    for s in senders[:2]:
        frames, _, acked, last = sent_summary(finish_client(s))
        assert acked == last == frames, "every frame acknowledged"
    finish_client(senders[2])
    rec.wait_exit()

    expect = {}
    for line in lines_tee.read_text().splitlines():
        head, fields, ts = line.split(" ")
        temperature = dict(kv.split("=") for kv in fields.split(","))["temperature"]
        expect.setdefault("station" + head.split("=")[1], []).append((int(ts), temperature))
    assert sum(map(len, expect.values())) == 4000
    with rec.recording() as f:
        for board in ("p", "q"):
            assert f[board]["adc0"].shape == (samples,)
            np.testing.assert_array_equal(f[board]["adc0"][...], data[board])
        for station, rows in expect.items():
            np.testing.assert_array_equal(f[station]["time"][...], [t for t, _ in rows])
            np.testing.assert_array_equal(f[station]["temperature"][...],
                                          np.array([v for _, v in rows], dtype=float)
                                          .astype(np.float32))


def test_sigterm_mid_run_completes_every_accelerator_event(recorder, tmp_path):
    """Records with LZ4 waveforms: events in flight at SIGTERM are completed
    from what the sender still sends, none is left with fill."""
    rec = recorder("""
- name: dust
  match: { key: "dust/{channel}" }
  group: /dust
  layout: records
  samples: 100000
  dt: 2.0e-8
  event_fields: { mass: float32, velocity: float32 }
  defaults: { dtype: float32, compression: lz4 }
  channels: { first_detector: {}, second_detector: {}, third_detector: {} }
""", listen=LISTEN, limits={"max_buffer": "16MiB", "max_frame": "1MiB"},
                   args=["--test-writer-delay-us", 5000])
    tee = tmp_path / "frames.bin"
    sender = start_client(["simulate", "accelerator", "-t", rec.address(), "--count", 50,
                           "--rate", 0, "--t0", T0, "--tee", tee])
    deadline = time.monotonic() + 30
    while not (tee.exists() and tee.stat().st_size > 20 * 1024 * 1024):
        assert sender.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    rec.signal()
    assert sender.poll() is None, "the run finished before SIGTERM: nothing was tested"
    frames, _, acked, last = sent_summary(finish_client(sender, timeout=120))
    assert acked == last == frames == 1 + 4 * 50
    rec.wait_exit()

    waves = {}
    for fr in parse_frames(tee.read_bytes()):
        if fr.type == DATA:
            waves[fr.event_id, fr.key.split("/")[1]] = fr.samples()
    with rec.recording() as f:
        g = f["/dust"]
        np.testing.assert_array_equal(g["event_id"][...], np.arange(1, 51))
        for name in ("first_detector", "second_detector", "third_detector"):
            data = g[name][...]
            assert data.shape == (50, 100000)
            for row in range(50):
                assert data[row].tobytes() == waves[row + 1, name].tobytes(), (name, row)


def test_sigterm_acks_at_once_whatever_the_flush_period(recorder):
    """A sender owed ACKs at SIGTERM gets them from a flush made at once,
    not at the next periodic one: with output.flush 1h the recorder used to
    hold the drain (and the stop) for up to that hour."""
    rec = recorder(STREAM, listen=LISTEN, output={"flush": "1h"})
    samples = np.arange(1000, dtype=np.int16)
    with socket.create_connection(("127.0.0.1", rec.port()), timeout=60) as s:
        for seq in range(1, 6):
            s.sendall(encode_frame(DATA, "b1/adc0", samples.tobytes(), dtype=3, seq=seq, t0=T0,
                                   flags=FLAG_ACK | FLAG_CRC))
        rec.signal()
        acked = 0
        buf = b""
        while acked < 5:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
            frames, _ = parse_frames_prefix(buf)
            acked = max([f.seq for f in frames if f.type == ACK] + [0])
    assert acked == 5, f"ACKs up to {acked} of 5 before the connection closed"
    rec.wait_exit(timeout=60)
    with rec.recording() as f:
        assert f["b1/adc0"].shape == (5000,)
