"""Acceptance: a listener's token is enforced (SPEC §3.1 HELLO, §7 `token`).

A frame sender that sends data without a HELLO, a HELLO without a token, or
a HELLO with the wrong token is refused: its connection is closed, the
failure is logged as an auth failure with the peer, and none of its data
reaches the file. A sender presenting the right token, at the same time, on
the same listener, is stored completely and acknowledged.
"""
import re
import socket

import h5py
import numpy as np
import pytest

from recorder_fixture import (DATA, HELLO, T0, encode_frame, finish_client, run_client,
                              sent_summary, start_client)
from recorder_fixture import recorder  # noqa: F401 (pytest fixture)

TOKEN = "s3cret-Token_42"
STREAM = """
- name: adc
  match: { key: "{board}/{channel}" }
  group: "/{board}"
  layout: stream
  defaults: { dtype: int16, dt: 1.0e-6, chunk: 4096 }
  channels: { adc0: {} }
"""
SAMPLES = np.arange(-500, 500, dtype=np.int16)


@pytest.fixture
def daemon(recorder):
    return recorder(STREAM, listen=[{"protocol": "frame", "transport": "tcp",
                                     "token": f'"{TOKEN}"'}])


def data_frame(board, seq):
    return encode_frame(DATA, f"{board}/adc0", SAMPLES.tobytes(), dtype=3, seq=seq, t0=T0)


def refused(sock):
    sock.settimeout(5)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


RAW_CASES = {
    "no_hello": (lambda: data_frame("nohello", 1),
                 r"requires a HELLO frame with its token first"),
    "hello_without_token": (lambda: encode_frame(HELLO, "anon", b"", seq=1)
                            + data_frame("anon", 2), r"HELLO with no token"),
    "hello_wrong_token": (lambda: encode_frame(HELLO, "guess", b'token="s3cret"', seq=1)
                          + data_frame("guess", 2), r"HELLO with a wrong token"),
}


@pytest.mark.parametrize("case", RAW_CASES)
def test_token_enforced(daemon, tmp_path, case):
    good_data = tmp_path / "good.bin"
    np.tile(SAMPLES, 200).tofile(good_data)
    good = start_client(["send", "-t", daemon.address(), "--token", TOKEN, "--name", "good",
                         "-k", "good/adc0", "-d", "int16", "-n", 1000, "--t0", T0,
                         "--dt", "1e-6", good_data])

    build, reason = RAW_CASES[case]
    with socket.create_connection(("127.0.0.1", daemon.port()), timeout=5) as sock:
        peer = "127.0.0.1:%d" % sock.getsockname()[1]
        sock.sendall(build())
        assert refused(sock), "the daemon kept an unauthenticated connection open"
    daemon.wait_log(rf"auth_failures: (\S+ \()?{re.escape(peer)}\)?: .*{reason}")

    # The real client with a wrong token fails, and says why.
    res = run_client(["send", "-t", daemon.address(), "--token", "wrong", "--name", "intruder",
                      "-k", "intruder/adc0", "-d", "int16", good_data], check=False)
    assert res.returncode != 0, res.stdout
    assert "closed" in res.stderr or "reset" in res.stderr.lower(), res.stderr
    daemon.wait_log(r"auth_failures: intruder \(127\.0\.0\.1:\d+\): HELLO with a wrong token")

    frames, _, acked, last = sent_summary(finish_client(good))
    assert acked == last == frames == 1 + 200, "every frame of the good sender acknowledged"
    daemon.stop()
    with h5py.File(daemon.the_file(), "r") as f:
        assert list(f.keys()) == ["good"], "only the authenticated sender's data is stored"
        np.testing.assert_array_equal(f["good/adc0"][...], np.tile(SAMPLES, 200))
