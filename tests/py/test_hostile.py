"""Hostile and idle peers cannot exhaust the recorder or shut senders out.

- Before a token listener has seen the HELLO with its token, no frame
  larger than 4 KiB is buffered: 24 connections announcing 64 MiB payloads
  are closed at their header and counted as auth failures (they used to
  pin 1.5 GiB).
- Sockets that never prove themselves (no byte; on a token listener, no
  right HELLO) cannot hold the connection slots: at a limit the oldest of
  them is closed to make room, and each is closed after auth_timeout.
- A listener takes at most its max_connections (three quarters of
  limits.max_connections with several listeners), so a flood on one leaves
  room on the others; one address gets at most max_per_peer.
"""
import socket

import pytest

import numpy as np

from recorder_fixture import (ADC_STREAM, DATA, HEADER, HELLO, T0, WEATHER_STREAM,
                              encode_frame, run_client, sent_summary, vm_rss_kib)
from recorder_fixture import recorder  # noqa: F401 (pytest fixture)
from reliability_helpers import wait_for

TOKEN = "s3cret-Token_42"
STREAM = ADC_STREAM + WEATHER_STREAM


def closed(sock, timeout=5):
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_unauthenticated_frames_are_not_buffered(recorder):
    rec = recorder(STREAM, listen=[{"protocol": "frame", "transport": "tcp",
                                    "token": f'"{TOKEN}"'},
                                   {"protocol": "line", "transport": "tcp"}],
                   limits={"max_frame": "64MiB"})
    before = vm_rss_kib(rec.pid)
    socks = []
    for k in range(24):
        s = socket.create_connection(rec.bound[0][1], timeout=5)
        # a DATA (and a HELLO) header announcing 64 MiB, then 1 MiB of it
        ftype = DATA if k % 2 else HELLO
        header = HEADER.pack(b"H5RF", 1, ftype, 3 if ftype == DATA else 0, 0, 5, 0,
                             64 << 20, 1, T0, 0)
        try:
            s.sendall(header + b"x/adc" + b"\0" * (1 << 20))
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed at the header, as it should be
        socks.append(s)
    for s in socks:
        assert closed(s), "an unauthenticated 64 MiB frame was taken"
        s.close()
    grown = vm_rss_kib(rec.pid) - before
    assert grown < 64 * 1024, f"RSS grew {grown} KiB for 24 refused frames"
    status = rec.status()
    assert status["counters"]["auth_failures"] == 24, status["counters"]
    assert "before its HELLO with the token" in rec.log()
    rec.stop()


def test_idle_sockets_cannot_keep_a_sender_out(recorder, tmp_path):
    """256 sockets that say nothing take every slot of limits.max_connections
    (the default, 256, all defaults here); a sender with the token still connects, every one
    of its frames is ACKed, and after auth_timeout the idle ones are gone."""
    rec = recorder(STREAM, listen=[{"protocol": "frame", "transport": "tcp",
                                    "token": f'"{TOKEN}"'},
                                   {"protocol": "line", "transport": "tcp"}])
    frame_listener = rec.status()["listeners"][0]
    # from four loopback addresses, 64 each (max_per_peer), as a botnet would
    idle = [socket.create_connection(rec.bound[0][1], timeout=5,
                                     source_address=(f"127.0.1.{1 + k // 64}", 0))
            for k in range(192)]
    idle += [socket.create_connection(rec.bound[1][1], timeout=5,
                                      source_address=("127.0.1.4", 0)) for _ in range(64)]
    wait_for(lambda: sum(l["connections_open"] for l in rec.status()["listeners"]) >= 250,
             what="the idle sockets accepted")
    data = tmp_path / "data.bin"
    np.arange(-500, 500, dtype=np.int16).tofile(data)
    res = run_client(["send", "-t", rec.address(0), "--token", TOKEN, "--name", "good",
                      "-k", "good/adc0", "-d", "int16", "-n", 100, "--t0", T0, "--dt", "1e-6",
                      data])
    frames, _, acked, last = sent_summary(res.stdout)
    assert acked == last == frames == 11
    wait_for(lambda: rec.status()["listeners"][0]["connections_open"] == 0, timeout=30,
             what="the silent sockets closed after auth_timeout (10 s)")
    listeners = rec.status()["listeners"]
    assert listeners[0]["evicted"] >= 1 and listeners[0]["timed_out"] >= 150, listeners
    assert frame_listener["refused"] == 0
    for s in idle:
        s.close()
    rec.stop()


def test_one_listener_cannot_take_every_slot(recorder):
    """limits.max_connections 8 over two listeners: the line listener takes
    at most 6 (three quarters), even from senders that all sent a byte; the
    frame listener keeps room."""
    rec = recorder(STREAM, listen=[{"protocol": "frame", "transport": "tcp"},
                                   {"protocol": "line", "transport": "tcp"}],
                   limits={"max_connections": 8})
    lines, sent = [], 0
    for k in range(8):
        s = socket.create_connection(rec.bound[1][1], timeout=5,
                                     source_address=(f"127.0.2.{k + 1}", 0))
        line = b"weather,station=s%d temperature=1 %d\n" % (k, T0)
        s.sendall(line)
        lines.append(s)
        if k < 6:  # each proved itself (a byte) before the next connects
            sent += len(line)
            wait_for(lambda: rec.status()["listeners"][1]["bytes"] == sent,
                     what=f"line {k + 1} read")
    wait_for(lambda: rec.status()["listeners"][1]["refused"] == 2, what="2 refused")
    assert rec.status()["listeners"][1]["connections_open"] == 6
    frames = []
    for k in range(2):
        s = socket.create_connection(rec.bound[0][1], timeout=5)
        s.sendall(encode_frame(HELLO, f"b{k}", b"", seq=1))
        frames.append(s)
    wait_for(lambda: rec.status()["listeners"][0]["connections_open"] == 2, what="2 frames")
    assert not any(closed(s, timeout=0.2) for s in frames)
    for s in lines + frames:
        s.close()
    assert "the listener's max_connections reached" in rec.log()
    rec.stop()


def test_one_address_gets_max_per_peer(recorder):
    """One address gets at most max_per_peer (64 by default) connections on a
    TCP listener; the 65th is refused, another address still connects."""
    rec = recorder(STREAM, listen=[{"protocol": "frame", "transport": "tcp"},
                                   {"protocol": "line", "transport": "tcp"}])
    peers, sent = [], 0
    for k in range(65):
        s = socket.create_connection(rec.bound[0][1], timeout=5)
        hello = encode_frame(HELLO, f"p{k}", b"", seq=1)
        s.sendall(hello)
        peers.append(s)
        sent += len(hello)
        if k < 64:  # each proved itself before the next connects
            wait_for(lambda: rec.status()["listeners"][0]["bytes"] == sent,
                     what=f"HELLO {k + 1} read")
    assert closed(peers[64]), "a 65th connection from one address was taken"
    assert rec.status()["listeners"][0]["refused"] == 1
    assert not any(closed(s, timeout=0.05) for s in peers[:64])
    other = socket.create_connection(rec.bound[0][1], timeout=5,
                                     source_address=("127.0.0.2", 0))
    other.sendall(encode_frame(HELLO, "other", b"", seq=1))
    wait_for(lambda: rec.status()["listeners"][0]["connections_open"] == 65,
             what="a connection from another address")
    for s in peers + [other]:
        s.close()
    assert "max_per_peer reached" in rec.log()
    rec.stop()


def test_a_token_of_the_longest_length_matches(recorder, tmp_path):
    """A token of 256 characters (the most `h5rec check` accepts) is one a
    sender can present: the HELLO that carries it used to be cut short."""
    token = ("0123456789abcdef" * 16)[:256]
    rec = recorder(STREAM, listen=[{"protocol": "frame", "transport": "tcp",
                                    "token": f'"{token}"'},
                                   {"protocol": "line", "transport": "tcp"}])
    data = tmp_path / "data.bin"
    np.arange(300, dtype=np.int16).tofile(data)
    res = run_client(["send", "-t", rec.address(0), "--token", token, "--name", "long",
                      "-k", "long/adc0", "-d", "int16", "-n", 100, "--t0", T0, "--dt", "1e-6",
                      data])
    frames, _, acked, last = sent_summary(res.stdout)
    assert acked == last == frames == 4
    assert rec.status()["counters"]["auth_failures"] == 0
    rec.stop()


def send_lines(address, lines, source="127.0.0.1"):
    with socket.create_connection(address, timeout=5, source_address=(source, 0)) as s:
        s.sendall("".join(lines).encode())


def station_rows(path, station):
    import h5py
    with h5py.File(path, "r") as f:
        return len(f[station]["time"]) if station in f else 0


@pytest.mark.parametrize("swmr", [True, False], ids=["swmr", "no-swmr"])
def test_max_groups_is_per_file(recorder, swmr):
    """Junk tag values fill limits.max_groups in one file; after a roll a
    new station is taken again (it used to be refused until a restart), the
    refusals are counted per peer address, and the junk groups are
    forgotten once they stayed idle for a whole file."""
    rec = recorder(WEATHER_STREAM, listen=[{"protocol": "line", "transport": "tcp"}],
                   limits={"max_groups": 20},
                   output={"flush": "100ms", "swmr": "true" if swmr else "false"})
    address = rec.bound[0][1]
    send_lines(address, [f"weather,station=junk{i} temperature=1 {T0 + i}\n"
                         for i in range(30)], source="127.0.1.9")
    wait_for(lambda: rec.status()["counters"]["lines"] == 30, what="30 junk lines")
    rec.control("flush")
    send_lines(address, [f"weather,station=good temperature=2 {T0 + 100}\n"])
    wait_for(lambda: rec.status()["counters"]["group_limit"] == 11, what="11 refusals")
    rec.control("flush")
    status = rec.status()
    groups = status["groups"]
    assert groups["in_file"] == 20 and groups["max_per_file"] == 20, groups
    refused = {p["peer"]: p["refused"] for p in groups["refused_by_peer"]}
    assert refused == {"127.0.1.9": 10, "127.0.0.1": 1}, groups
    text = rec.control("status").stdout
    assert "new groups refused (by peer): " in text and "127.0.1.9 10" in text, text

    rec.control("roll")
    send_lines(address, [f"weather,station=good temperature=3 {T0 + 200}\n"])
    wait_for(lambda: rec.status()["counters"]["lines"] == 32, what="the good line")
    rec.control("flush")
    assert rec.status()["counters"]["group_limit"] == 11
    first = rec.files()[0]  # closed; the second is still written
    assert station_rows(first, "junk0") == 1 and station_rows(first, "junk19") == 1
    assert station_rows(first, "junk29") == 0 and station_rows(first, "good") == 0
    # the ten refused never had data: forgotten at the first roll; the
    # twenty junk stations had none in the second file: forgotten at its end
    rec.control("roll")
    wait_for(lambda: rec.status()["groups"]["known"] == 1, what="junk groups retired")
    assert rec.status()["groups"]["retired"] == 30
    # the station kept goes on, and a junk name comes back as a new group
    send_lines(address, [f"weather,station=good temperature=4 {T0 + 300}\n",
                         f"weather,station=junk3 temperature=5 {T0 + 300}\n"])
    wait_for(lambda: rec.status()["counters"]["lines"] == 34, what="two more lines")
    rec.stop()
    files = rec.files()
    assert len(files) == 3, files
    assert station_rows(files[1], "good") == 1
    assert station_rows(files[2], "good") == 1 and station_rows(files[2], "junk3") == 1
    assert sum(station_rows(f, "junk3") for f in files) == 2
    assert sum(station_rows(f, "junk29") for f in files) == 0
