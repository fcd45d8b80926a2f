"""Acceptance: SIGHUP rolls to a new file in the middle of live streams and
nothing is lost or recorded twice (SPEC §4.5, §6).

A digitizer (frames, stream layout) and a weather network (lines, table
layout) send at a steady rate while the daemon gets SIGHUP twice. The files,
read in sequence order, must together hold every sample and every line
exactly once; each file must be self-consistent (exact extents, a frame
index that starts at 0 in that file).
"""
import re
import signal
import time

import h5py
import numpy as np

from recorder_fixture import HELLO, T0, finish_client, parse_frames, sent_summary, start_client
from recorder_fixture import recorder  # noqa: F401 (pytest fixture)

STREAMS = """
- name: adc
  match: { key: "{board}/{channel}" }
  group: "/{board}"
  layout: stream
  defaults: { dtype: int16, dt: 1.0e-6, chunk: 8192 }
  channels: { adc0: {}, adc1: {}, adc2: {}, adc3: {} }
- name: weather
  match: { measurement: weather }
  group: "/station{station}"
  layout: table
  defaults: { dtype: float32, chunk: 128 }
  channels: { temperature: {}, wind: {}, pressure: {}, humidity: {} }
"""
LISTEN = [{"protocol": "frame", "transport": "tcp"}, {"protocol": "line", "transport": "tcp"}]


def test_sighup_rolls_without_loss_or_duplicates(recorder, tmp_path):
    rec = recorder(STREAMS, listen=LISTEN)
    frames_tee, lines_tee = tmp_path / "frames.bin", tmp_path / "lines.txt"
    frames = start_client(["simulate", "digitizer", "-t", rec.address(0), "--stations", 2,
                           "--count", 150, "--samples", 1500, "--rate", 150, "--t0", T0,
                           "--tee", frames_tee])
    lines = start_client(["simulate", "weather", "-t", rec.address(1), "--stations", 5,
                          "--count", 1000, "--rate", 1000, "--t0", T0, "--tee", lines_tee])
    # Roll at about a third and two thirds of the frame stream, so that every
    # file gets some of it however loaded the machine is.
    total = 150 * 2 * 4 * (40 + len("board0/adc0") + 1500 * 2 + 4)
    for part in (1, 2):
        deadline = time.monotonic() + 30
        while not (frames_tee.exists() and frames_tee.stat().st_size > part * total // 3):
            assert frames.poll() is None and time.monotonic() < deadline
            time.sleep(0.005)
        rec.signal(signal.SIGHUP)
        rec.wait_log(r"SIGHUP: rolling" + r"(.|\n)*SIGHUP: rolling" * (part - 1))
    frames_out = finish_client(frames)
    finish_client(lines)
    n, _, acked, last = sent_summary(frames_out)
    assert acked == last == n, frames_out
    assert frames.returncode == 0 and lines.returncode == 0
    log = rec.stop()
    assert log.count("SIGHUP: rolling") == 2, log
    assert "warning" not in log and "error" not in log, log

    files = rec.files()
    assert len(files) == 3, files
    # each roll names the file it closed
    closed = re.findall(r"notice: roll: (\S+) closed; the next data starts a new file", log)
    assert sorted(closed) == sorted(files)[:2], (closed, files)
    sent = [f for f in parse_frames(frames_tee.read_bytes()) if f.type != HELLO]
    got = {}
    rows_per_file = []
    for path in files:
        with h5py.File(path, "r") as f:
            rows_per_file.append(0)
            for board in ("board0", "board1"):
                if board not in f:
                    continue
                for c in range(4):
                    g, ch = f[board], f"adc{c}"
                    data = g[ch][...]
                    start = g[f"{ch}_frame_start"][...]
                    seqs = g[f"{ch}_frame_seq"][...]
                    assert len(start) == len(seqs) == len(g[f"{ch}_frame_time"])
                    if len(start):
                        # Each file's index describes that file's samples.
                        assert start[0] == 0
                        assert np.all(np.diff(start) > 0) and start[-1] < len(data)
                    entry = got.setdefault(f"{board}/{ch}", {"data": [], "seq": []})
                    entry["data"].append(data)
                    entry["seq"].append(seqs)
                    rows_per_file[-1] += len(seqs)
            for station in [k for k in f if k.startswith("station")]:
                g = f[station]
                entry = got.setdefault(station, {"time": [], "temperature": []})
                assert g["time"].shape == g["temperature"].shape
                entry["time"].append(g["time"][...])
                entry["temperature"].append(g["temperature"][...])
    assert all(rows_per_file), f"a file without frames: {rows_per_file}"

    for key in {fr.key for fr in sent}:
        mine = [fr for fr in sent if fr.key == key]
        np.testing.assert_array_equal(np.concatenate(got[key]["seq"]), [fr.seq for fr in mine],
                                      err_msg=key)
        np.testing.assert_array_equal(np.concatenate(got[key]["data"]),
                                      np.concatenate([fr.samples() for fr in mine]),
                                      err_msg=key)
    expect = {}
    for line in lines_tee.read_text().splitlines():
        head, fields, ts = line.split(" ")
        temperature = dict(kv.split("=") for kv in fields.split(","))["temperature"]
        expect.setdefault("station" + head.split("=")[1], []).append((int(ts), temperature))
    for station, rows in expect.items():
        np.testing.assert_array_equal(np.concatenate(got[station]["time"]),
                                      [t for t, _ in rows], err_msg=station)
        np.testing.assert_array_equal(np.concatenate(got[station]["temperature"]),
                                      np.array([v for _, v in rows], dtype=float)
                                      .astype(np.float32), err_msg=station)
