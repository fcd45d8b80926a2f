"""Acceptance: line protocol decoded exactly as InfluxDB decodes it (issue 11 §1).

The real daemon on loopback, read back with h5py:

- a raw newline inside a quoted string value is part of the string, over
  TCP (also when the string arrives in two reads) and UDP: the string that
  once injected a point nobody sent ("x\\ntypes,dev=c34i f64=34\\n") is
  stored as one value and no /types group appears;
- a backslash that escapes nothing is a literal byte and the byte after it
  is scanned on its own (`two\\\\ words` is `two\\ words`): the lines land
  in the right groups with the right values;
- the group tag of a line with 100 tags is found as its 90th tag, and a
  second, different value after the 64th tag is noticed;
- precisions `h` and `m` (InfluxDB's v1 API) convert timestamps right;
- routing messages quoting network text reach the log escaped.
"""
import socket
import time

from recorder_fixture import SEC, T0
from recorder_fixture import recorder  # noqa: F401 (pytest fixture)

STREAMS = """
- name: weather
  match: { measurement: weather }
  group: "/{station}"
  layout: table
  defaults: { dtype: float64, chunk: 16 }
  channels: { value: {}, note: { dtype: string } }
- name: types
  match: { measurement: types }
  group: "/types/{dev}"
  layout: table
  defaults: { dtype: float64, chunk: 16 }
  channels: { f64: {} }
"""
TCP = {"protocol": "line", "transport": "tcp"}
UDP = {"protocol": "line", "transport": "udp"}


def wait_handled(rec, lines, timeout=10.0):
    """Wait until the daemon has decoded `lines` lines, good or bad; returns
    its counters."""
    deadline = time.monotonic() + timeout
    while True:
        counters = rec.status()["counters"]
        handled = counters.get("lines", 0) + counters.get("bad_lines", 0)
        if handled >= lines:
            return counters
        assert time.monotonic() < deadline, f"{handled} of {lines} lines decoded: {counters}"
        time.sleep(0.02)


def send_tcp(rec, i, *parts):
    """Send the parts on one connection, each in its own write (and, with the
    pause between them, most likely its own read in the daemon)."""
    with socket.create_connection(("127.0.0.1", rec.port(i)), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for k, part in enumerate(parts):
            if k:
                time.sleep(0.1)
            sock.sendall(part)


def strings(dataset):
    return [v.decode() if isinstance(v, bytes) else v for v in dataset[...]]


def values(dataset):
    return [float(v) for v in dataset[...]]


def test_newline_in_string_is_one_value(recorder):
    rec = recorder(STREAMS, listen=[TCP, UDP])
    injected = b'x\ntypes,dev=c34i f64=34\n'
    line = b'weather,station=inj value=1,note="' + injected + b'" %d\n' % T0
    cut = line.index(b"f64")
    send_tcp(rec, 0, line[:cut], line[cut:] + b"weather,station=inj value=2 %d\n" % (T0 + SEC))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(b'weather,station=udp value=3,note="p\nq\\"\n" %d\n'
                   b'weather,station=udp value=4 %d' % (T0, T0 + SEC),
                   ("127.0.0.1", rec.port(1)))
    counters = wait_handled(rec, 4)
    log = rec.stop()
    f = rec.recording()
    assert "types" not in f.keys(), "a string value was decoded as a line"
    assert counters["lines"] == 4 and counters.get("bad_lines", 0) == 0, (counters, log)
    assert values(f["inj/value"]) == [1.0, 2.0]
    assert strings(f["inj/note"])[0] == injected.decode()
    assert list(f["inj/time"][...]) == [T0, T0 + SEC]
    assert values(f["udp/value"]) == [3.0, 4.0]
    assert strings(f["udp/note"])[0] == 'p\nq"\n'


# Each line, what InfluxDB makes of it, and where it must land.
BACKSLASH_LINES = [
    # tag value two\ words: a literal backslash, then an escaped space
    (rb'weather,station=bs1,host=two\\ words value=42', "bs1", 42.0, None),
    # tag value x\,y: the comma is escaped, not a tag separator
    (rb'weather,station=bs2,note=x\\,y value=43', "bs2", 43.0, None),
    # tag value a\ (backslash, escaped space), then the group tag
    (rb'weather,host=a\\ ,station=bs3 value=44', "bs3", 44.0, None),
    # tag key stat\=ion
    (rb'weather,stat\\=ion=zz,station=bs4 value=45', "bs4", 45.0, None),
    # tag value C:\Temp\ x from a client that escapes the space only
    (rb'weather,station=bs5,path=C:\Temp\\ x value=46', "bs5", 46.0, None),
    # string values escape only the quote and the backslash
    (rb'weather,station=bs6 value=47,note="C:\\dir\\ \"q\" a\,b"', "bs6", 47.0,
     r'C:\dir\ "q" a\,b'),
]


def test_backslashes_as_influxdb(recorder):
    rec = recorder(STREAMS, listen=[TCP])
    body = b"".join(line + b" %d\n" % T0 for line, *_ in BACKSLASH_LINES)
    # measurement a\,b=c: no such stream, which the log says with its name
    body += rb"a\\,b=c v=1" + b"\n"
    send_tcp(rec, 0, body)
    counters = wait_handled(rec, len(BACKSLASH_LINES) + 1)
    log = rec.stop()
    f = rec.recording()
    for _, group, value, note in BACKSLASH_LINES:
        assert group in f.keys(), (group, log)
        assert values(f[group]["value"]) == [value], group
        assert list(f[group]["time"][...]) == [T0], group
        if note is not None:
            assert strings(f[group]["note"]) == [note], group
    # log.c shows a backslash as \x5c
    assert r"measurement 'a\x5c,b=c' matches no stream" in log, log
    assert counters.get("bad_lines", 0) == 0, log
    assert counters.get("unknown_streams", 0) == 1, log


def test_group_tag_after_many_tags(recorder):
    rec = recorder(STREAMS, listen=[TCP])
    tags = [b"t%d=x" % i for i in range(100)]
    tags[89] = b"station=tags90"
    many = b"weather," + b",".join(tags) + b" value=7 %d\n" % T0
    # a second, different value of the group tag after the 64th tag
    dup = [b"station=dup1"] + [b"t%d=x" % i for i in range(80)] + [b"station=dup2"]
    conflicting = b"weather," + b",".join(dup) + b" value=8 %d\n" % T0
    send_tcp(rec, 0, many + conflicting)
    counters = wait_handled(rec, 2)
    log = rec.stop()
    f = rec.recording() if rec.files() else None
    assert f and "tags90" in f.keys(), log
    assert values(f["tags90/value"]) == [7.0]
    assert "dup1" not in f.keys() and "dup2" not in f.keys(), log
    assert counters.get("bad_placeholders", 0) == 1, log
    assert "tag 'station' has two values" in log, log


def test_precision_hours_and_minutes(recorder):
    hours = dict(TCP, precision="h")
    minutes = dict(UDP, precision="m")
    rec = recorder(STREAMS, listen=[hours, minutes])
    hour, minute = T0 // (3600 * SEC), T0 // (60 * SEC)   # 2026-01-01T00:00Z
    send_tcp(rec, 0, b"weather,station=hours value=1 %d\n"
                     b"weather,station=hours value=2 %d\n" % (hour, hour + 1))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(b"weather,station=minutes value=3 %d\n"
                   b"weather,station=minutes value=4 %d" % (minute, minute + 90),
                   ("127.0.0.1", rec.port(1)))
    counters = wait_handled(rec, 4)
    log = rec.stop()
    assert counters.get("bad_lines", 0) == 0, log
    f = rec.recording()
    assert list(f["hours/time"][...]) == [T0, T0 + 3600 * SEC]
    assert values(f["hours/value"]) == [1.0, 2.0]
    assert list(f["minutes/time"][...]) == [T0, T0 + 90 * 60 * SEC]
    assert values(f["minutes/value"]) == [3.0, 4.0]


def test_routing_messages_are_escaped(recorder):
    rec = recorder(STREAMS, listen=[TCP])
    send_tcp(rec, 0, b"weather,station=ab\x1b[31mc\r value=1\n"
                     b"we\x1b]0;x\x07ther,station=s value=1\n")
    wait_handled(rec, 2)
    log = rec.stop()
    assert "\x1b" not in log and "\r" not in log and "\x07" not in log
    assert r"\x1b[31mc\x0d" in log, log
    assert r"measurement 'we\x1b]0;x\x07ther' matches no stream" in log, log
