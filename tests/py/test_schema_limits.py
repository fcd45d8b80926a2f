"""Schema limits that keep `h5rec check` and `allow` lists honest.

- Nesting deeper than 64 mappings and lists is refused with FILE:LINE:COL
  at the first collection past the bound, before libyaml builds the tree
  (40,000 nested '[' used to take seconds of quadratic scanning and then
  fail with an unrelated message).
- A dual-stack listener ([::]:PORT) sees an IPv4 client as
  ::ffff:a.b.c.d. IPv4 rules match it, and so do rules written in that
  mapped form (`::ffff:127.0.0.1`, `::ffff:127.0.0.0/127`), which the
  schema stores as the IPv4 rules they name: they used to pass
  `h5rec check` and never match anyone. A client outside the rule, over
  IPv4 or IPv6, is refused and nothing of it is recorded.
"""
import re
import socket
import subprocess

import pytest

from recorder_fixture import H5REC, T0, WEATHER_STREAM
from recorder_fixture import recorder  # noqa: F401 (pytest fixture)

STREAM = WEATHER_STREAM
TOO_DEEP = "mappings and lists nested more than 64 deep (a schema needs 5)"


# ---- nesting depth -------------------------------------------------------------

DEEP = {
    "flow": ("name: t\nlisten: " + "[" * 40000 + "]" * 40000 + "\n", "2:72"),
    "block": ("name: t\nlisten:\n" + "- " * 40000 + "x\n", "3:127"),
    "unclosed": ("name: t\nlisten: " + "{a: " * 40000, "2:261"),
}


@pytest.mark.parametrize("form", DEEP)
def test_check_refuses_deep_nesting(tmp_path, form):
    text, where = DEEP[form]
    path = tmp_path / f"{form}.yaml"
    path.write_text(text)
    # the timeout only keeps a regression from hanging the suite
    res = subprocess.run([H5REC, "check", str(path)], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode != 0, res.stdout
    assert f"{path}:{where}: {TOO_DEEP}" in res.stderr + res.stdout, res.stderr[-2000:]


# ---- allow lists on a dual-stack listener ----------------------------------------

def dual_stack_available():
    """[::] can be bound and takes IPv4 clients, and ::1 exists."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            s.bind(("::", 0))
            s.listen()
            with socket.create_connection(("127.0.0.1", s.getsockname()[1]), timeout=5):
                pass
            with socket.create_connection(("::1", s.getsockname()[1]), timeout=5):
                pass
        return True
    except OSError:
        return False


def send_lines(family, source, port, station):
    """One line from `source` to the listener on loopback, then EOF; returns
    the local port. A refused connection is closed by the daemon at once,
    so the send, the shutdown or the read may fail: whether the line was
    taken is read from the file and the log."""
    target = "127.0.0.1" if family == socket.AF_INET else "::1"
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.bind((source, 0))
        sock.connect((target, port))
        local = sock.getsockname()[1]
        try:
            sock.sendall(f"weather,station={station} temperature=1.5 {T0}\n".encode())
            sock.shutdown(socket.SHUT_WR)
            assert sock.recv(1) == b""
        except OSError:  # reset, broken pipe, not connected
            pass
    return local


RULES = ["127.0.0.1", "::ffff:127.0.0.1", "::ffff:127.0.0.0/127", "127.0.0.0/31"]


@pytest.mark.skipif(not dual_stack_available(), reason="no dual-stack [::] or no ::1 here")
@pytest.mark.parametrize("rule", RULES)
def test_allow_on_dual_stack_listener(recorder, rule):
    rec = recorder(STREAM, listen=[{"protocol": "line", "transport": "tcp", "host": "::",
                                    "allow": f'["{rule}"]'}])
    port = rec.port()
    send_lines(socket.AF_INET, "127.0.0.1", port, "allowed")
    refused_v4 = send_lines(socket.AF_INET, "127.0.0.2", port, "other_v4")
    refused_v6 = send_lines(socket.AF_INET6, "::1", port, "v6")
    rec.wait_log(rf"\[::ffff:127\.0\.0\.2\]:{refused_v4}: refused on .*not in the allow list")
    rec.wait_log(rf"\[::1\]:{refused_v6}: refused on .*not in the allow list")
    log = rec.stop()
    assert not re.search(r"\[::ffff:127\.0\.0\.1\]:\d+: refused", log), log
    with rec.recording() as f:
        assert f.keys() == ["allowed"], log
        assert f["allowed/temperature"][...].tolist() == [1.5]
