"""Acceptance: InfluxDB's HTTP write API (listener protocol `http`) and /metrics.

The real daemon is started with an http listener on a free loopback port and
fed by real clients: Debian's python3-influxdb (write_points with line
protocol and with JSON points, gzip on and off, batches of 5000, precision
s) and curl (a gzip body, a chunked body, Expect: 100-continue). Every point
carries a unique seq field; after the daemon stops, the file must hold each
point exactly once, with its time. Each error row of issue 11's table is
produced with http.client or a raw socket and its status and JSON checked.
/metrics must parse with prometheus_client's text parser.
"""
import gzip
import http.client
import json
import os
import shutil
import socket
import subprocess
import time
import zlib

import h5py
import numpy as np
import pytest

from recorder_fixture import SEC, T0
from recorder_fixture import recorder  # noqa: F401 (pytest fixture)

STREAM = """
- name: weather
  match: { measurement: weather }
  group: "/{station}"
  layout: table
  channels: { temperature: { dtype: float64 }, seq: { dtype: int64 } }
"""
T0_S = T0 // SEC
HTTP = [{"protocol": "http", "transport": "tcp"}]
TIMEOUT = 30


def line(seq, station="s1", t_s=None):
    t_s = T0_S + seq if t_s is None else t_s
    return f"weather,station={station} temperature={seq * 0.5},seq={seq}i {t_s}"


def request(rec, method, path, body=None, headers=None, listener=0):
    """One request on a fresh connection: (status, headers dict, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", rec.port(listener), timeout=TIMEOUT)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def stored(rec):
    """{station: sorted list of (time ns, seq)} of every row in the files."""
    rows = {}
    for path in rec.files():
        with h5py.File(path, "r") as f:
            for station in f:
                g = f[station]
                rows.setdefault(station, []).extend(
                    zip(g["time"][...].tolist(), g["seq"][...].tolist()))
    return {k: sorted(v) for k, v in rows.items()}


def all_seqs(rec):
    return sorted(s for rows in stored(rec).values() for _, s in rows)


def test_python_influxdb_client(recorder):
    influxdb = pytest.importorskip("influxdb")
    rec = recorder(STREAM, listen=HTTP)
    client = influxdb.InfluxDBClient("127.0.0.1", rec.port(), database="weather",
                                     timeout=TIMEOUT)
    assert client.ping()  # X-Influxdb-Version
    client.create_database("weather")  # /query, as Telegraf and clients do
    seqs = list(range(0, 20000))
    # line protocol, 4 POSTs of 5000 lines, timestamps in seconds
    assert client.write_points([line(s) for s in seqs], protocol="line",
                               time_precision="s", batch_size=5000)
    # the same through gzip
    gz = influxdb.InfluxDBClient("127.0.0.1", rec.port(), database="weather",
                                 timeout=TIMEOUT, gzip=True)
    more = list(range(20000, 30000))
    assert gz.write_points([line(s, "s2") for s in more], protocol="line",
                           time_precision="s", batch_size=5000)
    # JSON points, which the client turns into line protocol
    points = [{"measurement": "weather", "tags": {"station": "s3"}, "time": T0_S + s,
               "fields": {"temperature": s * 0.5, "seq": s}} for s in range(30000, 35000)]
    assert client.write_points(points[:2500], time_precision="s", batch_size=5000)
    assert gz.write_points(points[2500:], time_precision="s", batch_size=5000)
    rec.stop()
    rows = stored(rec)
    want = {"s1": seqs, "s2": more, "s3": list(range(30000, 35000))}
    for station, expect in want.items():
        got = rows[station]
        assert sorted(s for _, s in got) == sorted(expect), station
        for t, s in got:
            assert t == (T0_S + s) * SEC
    assert all_seqs(rec) == list(range(35000))  # each exactly once


def curl(args, **kw):
    return subprocess.run(["curl", "-sS", "--max-time", str(TIMEOUT)] + args,
                          capture_output=True, text=True, timeout=TIMEOUT + 10, **kw)


@pytest.mark.skipif(not shutil.which("curl"), reason="curl not installed")
def test_curl_gzip_chunked_continue(recorder, tmp_path):
    rec = recorder(STREAM, listen=HTTP)
    url = f"http://127.0.0.1:{rec.port()}"
    plain = tmp_path / "plain.txt"
    plain.write_text("\n".join(line(s) for s in range(0, 5000)) + "\n")
    packed = tmp_path / "body.gz"
    packed.write_bytes(gzip.compress(
        ("\n".join(line(s) for s in range(5000, 10000)) + "\n").encode()))
    res = curl(["-o", "/dev/null", "-w", "%{http_code}", "--data-binary", f"@{packed}",
                "-H", "Content-Encoding: gzip", f"{url}/write?db=x&precision=s"])
    assert res.stdout == "204", res
    res = curl(["-o", "/dev/null", "-w", "%{http_code}", "--data-binary", f"@{plain}",
                "-H", "Transfer-Encoding: chunked", f"{url}/api/v2/write?org=o&bucket=b"
                "&precision=s"])
    assert res.stdout == "204", res
    cont = tmp_path / "cont.txt"
    cont.write_text("\n".join(line(s, "s2") for s in range(10000, 15000)))
    res = curl(["-v", "-o", "/dev/null", "-w", "%{http_code}", "--data-binary", f"@{cont}",
                "-H", "Expect: 100-continue", f"{url}/write?precision=s"])
    assert res.stdout == "204", res
    assert "HTTP/1.1 100 Continue" in res.stderr, res.stderr
    # chunked and gzip at once, with 100-continue
    res = curl(["-v", "-o", "/dev/null", "-w", "%{http_code}", "--data-binary",
                f"@{packed}", "-H", "Content-Encoding: gzip", "-H",
                "Transfer-Encoding: chunked", "-H", "Expect: 100-continue",
                f"{url}/write?precision=s"])
    assert res.stdout == "204", res
    rec.stop()
    assert all_seqs(rec) == sorted(list(range(0, 15000)) + list(range(5000, 10000)))


def check_influx_headers(headers):
    assert "x-influxdb-version" in headers, headers


def test_partial_write_keeps_good_lines(recorder):
    rec = recorder(STREAM, listen=HTTP)
    body = "\n".join([line(1), "weather,station=s1 temperature=", line(2),
                      "weather,station=s1 temperature=1,seq=3i notatime", line(4)])
    status, headers, text = request(rec, "POST", "/write?precision=s", body)
    assert status == 400
    check_influx_headers(headers)
    err = json.loads(text)["error"]
    assert err.startswith("partial write: unable to parse 'weather,station=s1 temperature=': ")
    assert err.endswith(" dropped=2"), err
    status, _, text = request(rec, "POST", "/api/v2/write?precision=s&org=o&bucket=b",
                              line(5) + "\nnope\n")
    assert status == 400
    v2 = json.loads(text)
    assert v2["code"] == "invalid" and v2["message"].startswith("partial write: unable to "
                                                                "parse 'nope': ")
    assert v2["message"].endswith("dropped=1")
    # an unknown measurement is dropped too, and said so
    status, _, text = request(rec, "POST", "/write?precision=s", line(6) + "\nrain v=1\n")
    assert status == 400 and "dropped=1" in json.loads(text)["error"]
    rec.stop()
    assert all_seqs(rec) == [1, 2, 4, 5, 6]


def test_errors_and_pages(recorder):
    rec = recorder(STREAM, listen=[{"protocol": "http", "transport": "tcp",
                                    "max_body": "64KiB"}])
    for method in ("GET", "HEAD"):
        status, headers, text = request(rec, method, "/ping")
        assert status == 204 and text == b""
        check_influx_headers(headers)
    status, headers, text = request(rec, "GET", "/ping?verbose=true")
    assert status == 200 and "version" in json.loads(text)
    for path in ("/health", "/api/v2/health", "/ready"):
        status, headers, text = request(rec, "GET", path)
        assert status == 200 and json.loads(text)["status"] == "pass", path
        check_influx_headers(headers)
    for method in ("GET", "POST"):
        status, headers, text = request(rec, method, "/query?q=CREATE+DATABASE+x")
        assert status == 200 and json.loads(text) == {"results": [{"statement_id": 0}]}
    status, headers, text = request(rec, "GET", "/nothing/here")
    assert status == 404 and "error" in json.loads(text)
    check_influx_headers(headers)
    status, headers, text = request(rec, "GET", "/write")
    assert status == 404
    # 415: an encoding we do not decode
    status, headers, text = request(rec, "POST", "/write", line(1),
                                    {"Content-Encoding": "br"})
    assert status == 415 and "br" in json.loads(text)["error"]
    check_influx_headers(headers)
    # 400: a precision the API does not have
    status, _, text = request(rec, "POST", "/write?precision=fortnight", line(1))
    assert status == 400
    status, _, text = request(rec, "POST", "/api/v2/write?precision=h", line(1))
    assert status == 400 and json.loads(text)["code"] == "invalid"
    # 413: Content-Length over max_body, answered before the body
    big = "\n".join(line(s) for s in range(3000))
    assert len(big) > 64 * 1024
    status, headers, text = request(rec, "POST", "/write?precision=s", big)
    assert status == 413 and headers.get("connection") == "close"
    check_influx_headers(headers)
    # 413: a gzip bomb, stopped on decoded bytes while streaming
    bomb = gzip.compress((line(100) + "\n").encode() * 200000, 9)  # 9 MB of lines
    assert len(bomb) < 64 * 1024
    status, headers, text = request(rec, "POST", "/write?precision=s", bomb,
                                    {"Content-Encoding": "gzip"})
    assert status == 413 and "max_body" in json.loads(text)["error"]
    # a corrupt gzip body stores nothing
    status, _, text = request(rec, "POST", "/write?precision=s",
                              gzip.compress(line(300).encode())[:-12] + b"garbage!",
                              {"Content-Encoding": "gzip"})
    assert status == 400 and "gzip" in json.loads(text)["error"]
    # a good write still works, and it is the only data stored
    status, _, _ = request(rec, "POST", "/write?precision=s", line(7))
    assert status == 204
    rec.stop()
    assert all_seqs(rec) == [7]


def test_token(recorder):
    import base64
    rec = recorder(STREAM, listen=[{"protocol": "http", "transport": "tcp",
                                    "token": "s3cret"}])
    status, headers, text = request(rec, "POST", "/write?precision=s", line(1))
    assert status == 401 and "error" in json.loads(text)
    check_influx_headers(headers)
    status, _, text = request(rec, "POST", "/api/v2/write?precision=s", line(1),
                              {"Authorization": "Token wrong"})
    assert status == 401 and json.loads(text)["code"] == "unauthorized"
    status, _, _ = request(rec, "POST", "/write?precision=s&u=me&p=wrong", line(1))
    assert status == 401
    basic = base64.b64encode(b"me:s3cret").decode()
    accepted = [("/write?precision=s", {"Authorization": "Token s3cret"}),
                ("/write?precision=s", {"Authorization": "Token me:s3cret"}),
                ("/write?precision=s", {"Authorization": f"Basic {basic}"}),
                ("/write?precision=s&u=me&p=s3cret", {})]
    for i, (path, headers) in enumerate(accepted):
        status, _, text = request(rec, "POST", path, line(10 + i), headers)
        assert status == 204, (path, headers, text)
    # /ping and /health need no token (clients ping before they log in)
    assert request(rec, "GET", "/ping")[0] == 204
    assert request(rec, "GET", "/query?q=x")[0] == 401
    assert request(rec, "GET", "/query?q=x", headers={"Authorization": "Token wrong"})[0] == 401
    assert request(rec, "GET", "/query?q=x&p=s3cret")[0] == 200
    # every refusal is an authentication failure: 3 writes, 2 queries
    status = rec.status()
    assert status["counters"]["auth_failures"] == 5
    # and status shows the answers by code, as /metrics does
    assert status["http_responses"]["401"] == 5
    assert status["http_responses"]["204"] == 5  # 4 writes and the ping
    assert status["http_responses"]["200"] == 1
    text = rec.control("status").stdout
    assert "http responses: 200: 1 204: 5 401: 5\n" in text, text
    rec.stop()
    assert all_seqs(rec) == [10, 11, 12, 13]


def read_responses(sock, n):
    """Read n HTTP responses without bodies or with Content-Length ones."""
    data, out = b"", []
    sock.settimeout(TIMEOUT)
    while len(out) < n:
        head_end = data.find(b"\r\n\r\n")
        if head_end >= 0:
            head = data[:head_end].decode()
            length = 0
            for h in head.split("\r\n")[1:]:
                k, v = h.split(":", 1)
                if k.lower() == "content-length":
                    length = int(v)
            if len(data) >= head_end + 4 + length:
                out.append((int(head.split()[1]), head, data[head_end + 4:head_end + 4 + length]))
                data = data[head_end + 4 + length:]
                continue
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return out


def test_keep_alive_and_pipelining(recorder):
    rec = recorder(STREAM, listen=HTTP)
    reqs = b""
    for s in range(20, 25):
        body = line(s).encode()
        reqs += (b"POST /write?precision=s HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    reqs += b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"
    bad = b"rain v=1"
    reqs += (b"POST /write?precision=s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
             % (len(bad), bad))
    reqs += b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", rec.port()), timeout=TIMEOUT) as sock:
        sock.sendall(reqs)  # all at once: pipelined
        got = read_responses(sock, 8)
        assert [g[0] for g in got] == [204] * 6 + [400, 404], got
        # the connection is still good for more
        body = line(25).encode()
        sock.sendall(b"POST /write?precision=s HTTP/1.1\r\nHost: x\r\nContent-Length: %d"
                     b"\r\n\r\n%s" % (len(body), body))
        assert read_responses(sock, 1)[0][0] == 204
        # a request cut off in its body stores none of its lines
        body = ("\n".join(line(s) for s in range(30, 40)) + "\n").encode()
        sock.sendall(b"POST /write?precision=s HTTP/1.1\r\nHost: x\r\nContent-Length: %d"
                     b"\r\n\r\n%s" % (len(body) + 100, body))
    time.sleep(0.2)
    rec.stop()
    assert all_seqs(rec) == list(range(20, 26))


def test_backpressure_answers_503(recorder):
    rec = recorder(STREAM, listen=HTTP, limits={"max_buffer": "1MiB", "max_frame": "64KiB"},
                   args=["--test-writer-delay-us", 200000])
    accepted, busy = [], 0
    seq = 0
    body_of = {}
    for i in range(200):
        lines = [line(s) for s in range(seq, seq + 2000)]
        status, headers, text = request(rec, "POST", "/write?precision=s",
                                        "\n".join(lines))
        if status == 204:
            accepted.extend(range(seq, seq + 2000))
        else:
            assert status == 503, (status, text)
            assert "retry-after" not in headers
            check_influx_headers(headers)
            assert "error" in json.loads(text)
            busy += 1
            if busy >= 3:
                break
        body_of[i] = status
        seq += 2000
    assert busy, "the writer kept up: no 503 seen"
    rec.stop()
    assert all_seqs(rec) == accepted


def test_retry_after(recorder):
    """retry_after on the listener: every 503 says when to come back."""
    rec = recorder(STREAM, listen=[{"protocol": "http", "transport": "tcp",
                                    "retry_after": "7s"}],
                   limits={"max_buffer": "1MiB", "max_frame": "64KiB"},
                   args=["--test-writer-delay-us", 200000])
    for seq in range(0, 200 * 2000, 2000):
        status, headers, _ = request(rec, "POST", "/write?precision=s",
                                     "\n".join(line(s) for s in range(seq, seq + 2000)))
        if status == 503:
            assert headers.get("retry-after") == "7", headers
            break
        assert status == 204 and "retry-after" not in headers
    else:
        pytest.fail("the writer kept up: no 503 seen")
    rec.stop()


def test_metrics(recorder):
    parser = pytest.importorskip("prometheus_client.parser")
    rec = recorder(STREAM, listen=HTTP + [{"protocol": "metrics", "transport": "tcp"}])
    assert request(rec, "POST", "/write?precision=s", line(1) + "\n" + line(2))[0] == 204
    assert request(rec, "POST", "/write?precision=s", "bad line")[0] == 400
    for listener in (0, 1):
        status, headers, text = request(rec, "GET", "/metrics", listener=listener)
        assert status == 200
        assert headers["content-type"].startswith("text/plain; version=0.0.4")
        families = {f.name: f for f in parser.text_string_to_metric_families(text.decode())}
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for f in families.values() for s in f.samples}
        assert samples[("h5rec_received_lines_total", ())] == 2
        assert samples[("h5rec_bad_input_total", (("class", "bad_lines"),))] == 1
        assert samples[("h5rec_http_responses_total", (("code", "204"),))] == 1
        assert samples[("h5rec_http_responses_total", (("code", "400"),))] == 1
        assert samples[("h5rec_buffer_limit_bytes", ())] == 512 * 1024 * 1024
        assert samples[("h5rec_stream_samples_total", (("stream", "weather"),))] == 4
        for name in ("h5rec_build_info", "h5rec_backpressure_seconds_total",
                     "h5rec_writer_queue_bytes", "h5rec_flushes_total",
                     "h5rec_last_flush_timestamp_seconds", "h5rec_files_closed_total",
                     "h5rec_open_groups", "h5rec_disk_free_bytes",
                     "h5rec_received_frames_total", "h5rec_received_samples_total",
                     "h5rec_received_bytes_total", "h5rec_connections_open",
                     "h5rec_listener_received_bytes_total", "h5rec_groups_known",
                     "h5rec_groups_retired_total", "h5rec_groups_refused_total",
                     "h5rec_rows_not_increasing_total", "h5rec_rows_implausible_total",
                     "h5rec_rows_rejected_total", "h5rec_run_start_timestamp_seconds"):
            assert any(k[0] == name for k in samples), name
        assert samples[("h5rec_file_groups_limit", ())] == 10000
        assert samples[("h5rec_run_info", (("name", ""),))] == 1
    # the metrics listener answers nothing else
    assert request(rec, "POST", "/write?precision=s", line(3), listener=1)[0] == 404
    assert request(rec, "GET", "/ping", listener=1)[0] == 204
    # everything status shows has a metric
    status_json = rec.status()
    assert status_json["counters"]["lines"] == 2
    rec.stop()


def metric(rec, name, listener=0):
    """The value of an unlabelled metric from /metrics."""
    from prometheus_client.parser import text_string_to_metric_families
    _, _, text = request(rec, "GET", "/metrics", listener=listener)
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            if s.name == name and not s.labels:
                return s.value
    raise KeyError(name)


def chunk(data):
    return b"%x\r\n%s\r\n" % (len(data), data)


UPLOADS = 200
HALF = 250  # lines per half body


def test_memory_of_200_chunked_gzip_uploads(recorder):
    """200 clients each half-way through a chunked, gzip'd body at once:
    the daemon's memory per connection stays bounded, and then every
    request is answered 204 with every point stored once."""
    pytest.importorskip("prometheus_client")
    from recorder_fixture import SANITIZED, vm_rss_kib
    rec = recorder(STREAM, listen=[{"protocol": "http", "transport": "tcp",
                                    "max_per_peer": 256}])
    base_kib = vm_rss_kib(rec.pid)
    socks, compressors = [], []
    try:
        for i in range(UPLOADS):
            s = socket.create_connection(("127.0.0.1", rec.port()), timeout=TIMEOUT)
            socks.append(s)
            z = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
            compressors.append(z)
            first = ("\n".join(line(i * 2 * HALF + k, f"c{i}") for k in range(HALF))
                     + "\n").encode()
            s.sendall(b"POST /write?precision=s HTTP/1.1\r\nHost: x\r\n"
                      b"Transfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n"
                      + chunk(z.compress(first) + z.flush(zlib.Z_SYNC_FLUSH)))
        deadline = time.monotonic() + TIMEOUT
        while metric(rec, "h5rec_received_lines_total") < UPLOADS * HALF:
            assert time.monotonic() < deadline, "the first halves were not decoded"
            time.sleep(0.05)
        inflight = metric(rec, "h5rec_http_inflight_bytes")
        assert inflight > 0  # the halves are held, not queued
        peak_kib = vm_rss_kib(rec.pid)
        per_conn_kib = (peak_kib - base_kib) / UPLOADS
        print(f"RSS {base_kib} KiB idle, {peak_kib} KiB with {UPLOADS} uploads half-way: "
              f"{per_conn_kib:.1f} KiB per connection ({inflight / UPLOADS / 1024:.1f} KiB "
              f"of rows in flight each)")
        # 64 KiB read buffer, zlib's 32 KiB window and state, the 16 KiB
        # inflate slice, URL and header buffers, the rows in flight (~20
        # KiB), malloc slack: well under 256 KiB; unbounded buffering of
        # bodies would not be.
        bound = 256 * (3 if SANITIZED == "address" else 1)
        assert per_conn_kib < bound
        for i, (s, z) in enumerate(zip(socks, compressors)):
            rest = ("\n".join(line(i * 2 * HALF + k, f"c{i}") for k in range(HALF, 2 * HALF))
                    + "\n").encode()
            s.sendall(chunk(z.compress(rest) + z.flush()) + b"0\r\n\r\n")
        for s in socks:
            got = read_responses(s, 1)
            assert got and got[0][0] == 204, got
    finally:
        for s in socks:
            s.close()
    rec.stop()
    assert all_seqs(rec) == list(range(UPLOADS * 2 * HALF))


@pytest.mark.skipif(not shutil.which("curl"), reason="curl not installed")
def test_unix_socket_and_malformed_requests(recorder):
    rec = recorder(STREAM, listen=[{"protocol": "http", "transport": "unix"},
                                   {"protocol": "http", "transport": "tcp"}])
    path = rec.address(0)[len("unix:"):]
    res = curl(["-o", "/dev/null", "-w", "%{http_code}", "--unix-socket", path,
                "--data-binary", line(1), "http://localhost/write?precision=s"])
    assert res.stdout == "204", res
    # not HTTP: 400, and the connection is closed after the answer
    with socket.create_connection(("127.0.0.1", rec.port(1)), timeout=TIMEOUT) as sock:
        sock.sendall(b"HELLO token=x\r\n\r\n")
        got = read_responses(sock, 1)
        assert got[0][0] == 400 and "Connection: close" in got[0][1], got
        assert "x-influxdb-version" in got[0][1].lower()
        assert sock.recv(100) == b""
    # a body that is both chunked and sized is refused, not guessed at
    with socket.create_connection(("127.0.0.1", rec.port(1)), timeout=TIMEOUT) as sock:
        body = line(2).encode()
        sock.sendall(b"POST /write?precision=s HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n" + chunk(body) + b"0\r\n\r\n")
        got = read_responses(sock, 1)
        assert got[0][0] == 400, got
    rec.stop()
    assert all_seqs(rec) == [1]


def test_sigterm_lets_a_request_in_flight_finish(recorder):
    """SIGTERM closes the listeners, but a request whose body is still
    arriving is read to its end, answered 204 and stored."""
    rec = recorder(STREAM, listen=HTTP)
    body = ("\n".join(line(s) for s in range(100)) + "\n").encode()
    with socket.create_connection(("127.0.0.1", rec.port()), timeout=TIMEOUT) as sock:
        sock.sendall(b"POST /write?precision=s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                     % len(body) + body[:len(body) // 2])
        deadline = time.monotonic() + TIMEOUT
        while rec.status()["counters"]["lines"] == 0:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        rec.signal()
        rec.wait_log(r"stopping; draining connections")
        sock.sendall(body[len(body) // 2:])
        got = read_responses(sock, 1)
        assert got[0][0] == 204, got
    rec.wait_exit()
    assert all_seqs(rec) == list(range(100))


def test_health_fails_while_output_stalled(recorder, tmp_path):
    """No file can be created (LD_PRELOAD create_fault: the output
    directory refuses new files while a flag file exists): the data is
    held, writing stops, and /health says 503 "fail" until files can be
    created again; then 200, and every write answered 204 is stored."""
    from recorder_fixture import preload_env
    flag = tmp_path / "unwritable"
    flag.touch()
    rec = recorder(STREAM, listen=HTTP, output={"flush": "200ms"}, start=False,
                   limits={"max_buffer": "1MiB", "max_frame": "64KiB"})
    rec.env.update(preload_env("create_fault", H5REC_CREATE_FAULT_DIR=rec.out,
                               H5REC_CREATE_FAULT_FLAG=flag, H5REC_CREATE_FAULT_ERRNO=13))
    rec.start()
    status, _, text = request(rec, "GET", "/health")
    assert status == 200 and json.loads(text)["status"] == "pass"
    accepted = []
    deadline = time.monotonic() + TIMEOUT
    seq = 0
    while not rec.status()["output"]["stalled"]:
        assert time.monotonic() < deadline, "the output never stalled"
        status, _, _ = request(rec, "POST", "/write?precision=s",
                               "\n".join(line(s) for s in range(seq, seq + 2000)))
        if status == 204:
            accepted.extend(range(seq, seq + 2000))
        seq += 2000
    for path in ("/health", "/ready", "/api/v2/health"):
        status, headers, text = request(rec, "GET", path)
        assert status == 503 and json.loads(text)["status"] == "fail", (path, text)
        check_influx_headers(headers)
    assert request(rec, "GET", "/ping")[0] == 204
    flag.unlink()
    deadline = time.monotonic() + TIMEOUT
    while request(rec, "GET", "/health")[0] != 200:
        assert time.monotonic() < deadline, "/health never passed again"
        time.sleep(0.05)
    rec.stop()
    assert accepted and all_seqs(rec) == accepted
