"""Acceptance: every transport a schema can name records the same way.

Frames over a Unix stream socket, TCP on ::1 and UDP; lines over UDP and
over TCP with a non-default timestamp precision. UDP datagrams are all or
nothing for frames (a datagram holding a bad frame is dropped whole) and
line by line for lines (docs/protocols.md §1.3, §2.2).
"""
import socket
import time

import numpy as np

from recorder_fixture import DATA, SEC, T0, encode_frame, run_client, sent_summary
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
  defaults: { dtype: float32, chunk: 256 }
  channels: { temperature: {}, wind: {}, pressure: {}, humidity: {} }
"""
LISTEN = [
    {"protocol": "frame", "transport": "unix"},
    {"protocol": "frame", "transport": "tcp", "host": "::1"},
    {"protocol": "frame", "transport": "udp"},
    {"protocol": "line", "transport": "udp"},
    {"protocol": "line", "transport": "tcp", "host": "::1", "precision": "ms"},
]
UNIX, TCP6, FRAME_UDP, LINE_UDP, LINE_TCP6_MS = range(5)


def test_frames_over_unix_ipv6_and_udp(recorder, tmp_path):
    rec = recorder(STREAMS, listen=LISTEN)
    data = np.random.default_rng(1).integers(-32768, 32767, 40 * 1000, dtype=np.int16)
    path = tmp_path / "samples.bin"
    data.tofile(path)
    for board, listener in (("unix", UNIX), ("v6", TCP6), ("udp", FRAME_UDP)):
        res = run_client(["send", "-t", rec.address(listener), "-k", f"{board}/adc0", "-d",
                          "int16", "-n", 1000, "--t0", T0, "--dt", "1e-6", path])
        frames, _, acked, last = sent_summary(res.stdout)
        if listener == FRAME_UDP:
            assert acked is None, "UDP frames cannot be acknowledged"
        else:
            assert acked == last == frames == 41, res.stdout
    # UDP has no end: wait until the daemon has read every datagram.
    time.sleep(0.3)
    log = rec.stop()
    assert "udp_drops" not in log and "warning" not in log, log
    with rec.recording() as f:
        assert sorted(f.keys()) == ["udp", "unix", "v6"]
        for board in ("unix", "v6", "udp"):
            np.testing.assert_array_equal(f[board]["adc0"][...], data, err_msg=board)
            np.testing.assert_array_equal(f[board]["adc0_frame_time"][...],
                                          T0 + np.arange(40) * 1000000)


def test_lines_over_udp_and_millisecond_tcp(recorder, tmp_path):
    rec = recorder(STREAMS, listen=LISTEN)
    tee = tmp_path / "lines.txt"
    run_client(["simulate", "weather", "-t", rec.address(LINE_UDP), "--stations", 4,
                "--count", 200, "--rate", 2000, "--t0", T0, "--tee", tee])
    host, port = "::1", rec.port(LINE_TCP6_MS)
    with socket.create_connection((host, port), timeout=5) as sock:
        # The last line has no newline: it is decoded at EOF.
        sock.sendall(b"weather,station=ms temperature=1.25 1767225600123\n"
                     b"weather,station=ms temperature=2.5 1767225600124")
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(1) == b""
    time.sleep(0.3)
    log = rec.stop()
    assert "udp_drops" not in log, log

    expect = {}
    for line in tee.read_text().splitlines():
        head, fields, ts = line.split(" ")
        temperature = dict(kv.split("=") for kv in fields.split(","))["temperature"]
        expect.setdefault(head.split("=")[1], []).append((int(ts), float(temperature)))
    with rec.recording() as f:
        assert sorted(f.keys()) == sorted([*expect, "ms"])
        for station, rows in expect.items():
            np.testing.assert_array_equal(f[station]["time"][...], [t for t, _ in rows])
            np.testing.assert_array_equal(f[station]["temperature"][...],
                                          np.float32([v for _, v in rows]))
        np.testing.assert_array_equal(f["ms/time"][...],
                                      [1767225600123000000, 1767225600124000000])
        np.testing.assert_array_equal(f["ms/temperature"][...], np.float32([1.25, 2.5]))


def test_udp_bad_datagrams(recorder):
    """A frame datagram with one bad frame is dropped whole; a line datagram
    loses only its bad line."""
    rec = recorder(STREAMS, listen=LISTEN)
    samples = np.arange(100, dtype=np.int16)

    def frame(seq, **kw):
        return encode_frame(DATA, "uf/adc0", (samples + seq).tobytes(), dtype=3, seq=seq,
                            t0=T0 + seq * SEC, **kw)

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(frame(1), ("127.0.0.1", rec.port(FRAME_UDP)))
        udp.sendto(frame(2) + frame(3, crc=0xDEADBEEF), ("127.0.0.1", rec.port(FRAME_UDP)))
        udp.sendto(frame(4)[:-1], ("127.0.0.1", rec.port(FRAME_UDP)))
        udp.sendto(frame(5) + frame(6), ("127.0.0.1", rec.port(FRAME_UDP)))
        udp.sendto(f"weather,station=ul temperature=1 {T0}\n"
                   f"weather,station=ul temperature=oops {T0 + SEC}\n"
                   f"weather,station=ul temperature=3 {T0 + 2 * SEC}".encode(),
                   ("127.0.0.1", rec.port(LINE_UDP)))
    rec.wait_log(r"datagram dropped: crc at byte")
    rec.wait_log(r"datagram dropped: truncated")
    rec.wait_log(r"bad_lines: 127\.0\.0\.1:\d+: line 2 \(byte \d+\): value: ")
    time.sleep(0.3)
    rec.stop()
    with rec.recording() as f:
        np.testing.assert_array_equal(f["uf/adc0_frame_seq"][...], [1, 5, 6])
        np.testing.assert_array_equal(
            f["uf/adc0"][...], np.concatenate([samples + 1, samples + 5, samples + 6]))
        np.testing.assert_array_equal(f["ul/time"][...], [T0, T0 + 2 * SEC])
        np.testing.assert_array_equal(f["ul/temperature"][...], np.float32([1, 3]))
