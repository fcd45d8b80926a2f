"""A weather network at the scale users run it: limits.max_groups (10,000)
stations appearing in one flush, at start and again right after a roll.

Under SWMR every group of a file is created before the file enters
SWMR-write mode (docs/engine.md): 10,000 stations at once make one new
file, which HDF5 1.10.8 crashed on when groups were created in a live file
with every dataset id kept open. Memory is bounded by what the engine
keeps per station, not by HDF5's per-open-dataset state: at most 512
dataset ids are open.
"""
import socket
import time

import h5py
import numpy as np

from recorder_fixture import SANITIZED, SEC, T0, RssSampler
from recorder_fixture import recorder  # noqa: F401 (pytest fixture)
from reliability_helpers import wait_for

STATIONS = 10000
WEATHER = """
- name: weather
  match: { measurement: weather }
  group: "/{station}"
  layout: table
  defaults: { dtype: float32, chunk: 4096, compression: deflate, level: 4, shuffle: true }
  channels: { temperature: {}, wind: {}, pressure: {}, humidity: {} }
"""
RSS_LIMIT_KIB = 300 * 1024


def values(station, burst):
    return (station % 400 / 10, burst + station % 7, 1000 + station % 50, station % 100)


def send_burst(rec, burst):
    """One line from each station, all in one connection, at once."""
    t = T0 + burst * 10 * SEC
    lines = b"".join(
        b"weather,station=s%d temperature=%g,wind=%g,pressure=%g,humidity=%g %d\n"
        % ((k, *values(k, burst), t)) for k in range(STATIONS))
    with socket.create_connection(rec.bound[0][1], timeout=60) as sock:
        sock.sendall(lines)


def test_ten_thousand_stations_at_once_and_again_after_a_roll(recorder):
    # Only the test's flushes: a periodic one in the middle of a burst (a
    # slow sanitized build, a loaded machine) would rightly start the
    # stations that came after it in a second file.
    rec = recorder(WEATHER, listen=[{"protocol": "line", "transport": "tcp"}],
                   limits={"max_groups": STATIONS}, output={"flush": "60s"})
    with RssSampler(rec.pid, period=0.2) as rss:
        send_burst(rec, 0)
        wait_for(lambda: rec.status()["counters"]["lines"] == STATIONS, timeout=120,
                 what="10,000 lines")
        rec.control("flush", timeout=300)
        rec.control("roll", timeout=300)
        send_burst(rec, 1)
        wait_for(lambda: rec.status()["counters"]["lines"] == 2 * STATIONS, timeout=120,
                 what="20,000 lines")
        rec.control("flush", timeout=300)
        time.sleep(1)
        idle = rss.samples[-1][1]
    status = rec.status()
    log = rec.stop()
    assert "error" not in log, log
    assert status["counters"]["write_errors"] == 0
    files = rec.files()
    assert len(files) == 2, files  # one per burst: the roll between them
    rows = {}
    for path in files:
        with h5py.File(path, "r") as f:
            assert len(f) == STATIONS, (path, len(f))
            for name in f:
                g = f[name]
                t = g["time"][...]
                cols = np.stack([g[c][...] for c in
                                 ("temperature", "wind", "pressure", "humidity")], axis=1)
                for i in range(len(t)):
                    rows.setdefault(name, []).append((int(t[i]), tuple(cols[i])))
    assert len(rows) == STATIONS
    for k in range(STATIONS):
        want = [(T0 + b * 10 * SEC, tuple(np.float32(values(k, b)))) for b in (0, 1)]
        assert sorted(rows[f"s{k}"]) == want, (k, rows[f"s{k}"])
    print(f"\n10,000 stations twice: peak RSS {rss.peak_kib / 1024:.0f} MiB, "
          f"idle after {idle / 1024:.0f} MiB")
    if not SANITIZED:
        assert idle <= RSS_LIMIT_KIB, f"{idle} KiB for {STATIONS} idle stations"
        assert rss.peak_kib <= RSS_LIMIT_KIB, f"peak {rss.peak_kib} KiB"
