"""Reliability: SIGKILL h5recd at random moments of mixed ingest (SPEC §6).

One schema, one output directory, N kill cycles (default 20; env
H5REC_CRASH_KILLS raises it; env H5REC_CRASH_SEED changes the draw). Each
cycle starts h5recd on the same, unchanged schema file and runs, at once:

  * a frame stream from the real client with ACKs requested and `--tee`:
    `h5rec simulate accelerator` (records layout, LZ4) on even cycles,
    `h5rec simulate digitizer` (stream layout, deflate) on odd ones. It
    connects through `AckRelay` (reliability_helpers.py), a transparent
    relay that records every ACK the recorder sends and exactly how many
    bytes it had handed to the recorder by then. The client itself cannot
    tell us: it prints "durable up to seq N" only when it finishes, and a
    killed recorder makes it fail;
  * a line stream, `h5rec simulate weather --tee` (table layout, no ACKs).

After a random delay (0.2-3 s) the daemon gets SIGKILL. Then:

  1. every output file opens (SWMR read, or `h5clear -s` on a copy);
  2. every frame the recorder acknowledged (seq <= highest ACK) is in the
     cycle's file with exactly the bytes the tee says were sent (waveforms
     and event fields of a record; samples, frame_time, frame_start and
     frame_seq of a stream frame);
  3. nothing in any file is garbage: every record row / stream frame /
     table row present matches what was sent (or is the fill value of a
     record channel that had not arrived); the rows of every station are a
     prefix of the lines sent to it;
  4. the relay's copy of what reached the recorder is a prefix of the tee
     (`--tee` is byte-exact);
  5. the restarted daemon writes new files: every earlier file is
     byte-identical (sha256) to what the kill left. A file appears only at
     its first flush, complete under its name: a kill before that leaves no
     new file (and then nothing was acknowledged).

The unacknowledged window at each kill (frames and bytes that had reached
the recorder's socket after the last ACK, and the age of that ACK) is
printed as a table (`pytest -s`). A last start on the same schema, a small
send and SIGTERM check the recorder still stops cleanly.
"""
import os
import random
import statistics
import subprocess
import sys
import time

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from reliability_helpers import (DATA, EVENT, H5REC, AckRelay, Daemon,  # noqa: E402
                                 frame_ends, free_port, open_killed, parse_frames_prefix,
                                 sha256)

KILLS = int(os.environ.get("H5REC_CRASH_KILLS", "20"))
SEED = int(os.environ.get("H5REC_CRASH_SEED", "20261124"))
T0 = 1767225600000000000            # 2026-01-01T00:00:00Z
SAMPLES = 20000                     # per accelerator waveform (80 kB float32)
DIGITIZER_SAMPLES = 4096            # per digitizer frame (8 kB int16)
ACCELERATOR_RATE = 40               # events/s: 3 waveforms each, ~9.6 MB/s
DIGITIZER_RATE = 250                # frames/s per channel, 4 channels: ~8 MB/s
WEATHER_RATE = 2000                 # lines/s over 12 stations
STATIONS = 12

SCHEMA = """\
name: crash
output: {{ directory: "{out}", file: "crash-{{seq}}.h5", flush: 1s }}
control: {{ socket: "{control}" }}
listen:
  - {{ protocol: frame, transport: tcp, address: "127.0.0.1:{frame_port}" }}
  - {{ protocol: line, transport: tcp, address: "127.0.0.1:{line_port}" }}
streams:
  - name: dust
    match: {{ key: "dust/{{channel}}" }}
    group: /dust
    layout: records
    samples: {samples}
    dt: 2.0e-8
    record_timeout: 1s
    event_fields: {{ mass: float32, velocity: float32 }}
    defaults: {{ dtype: float32, units: V, compression: lz4 }}
    channels: {{ first_detector: {{}}, second_detector: {{}}, third_detector: {{}} }}
  - name: adc
    match: {{ key: "{{board}}/{{channel}}" }}
    group: "/{{board}}"
    layout: stream
    defaults: {{ dtype: int16, dt: 1.0e-6, chunk: 65536, compression: deflate, level: 1 }}
    channels: {{ adc0: {{}}, adc1: {{}} }}
  - name: weather
    match: {{ measurement: weather }}
    group: "/station_{{station}}"
    layout: table
    defaults: {{ dtype: float32, chunk: 1024 }}
    channels: {{ temperature: {{}}, wind: {{}}, pressure: {{}}, humidity: {{}} }}
"""

DUST_CHANNELS = ("first_detector", "second_detector", "third_detector")


# ---- what was sent -------------------------------------------------------------------


def sent_lines(path):
    """{station: [(time, temperature, wind, pressure, humidity)]} in send order;
    a killed client's last line may be cut: only whole lines count."""
    with open(path, "rb") as f:
        text = f.read().decode()
    out = {}
    for line in text.split("\n")[:-1]:
        head, fields, stamp = line.split(" ")
        station = head.split("station=")[1]
        values = dict(kv.split("=") for kv in fields.split(","))
        out.setdefault(station, []).append(
            (int(stamp), *(float(values[k]) for k in ("temperature", "wind", "pressure",
                                                       "humidity"))))
    return out


# ---- checks on the file --------------------------------------------------------------


def same_float32(file_values, sent_values):
    return np.array_equal(np.asarray(file_values, dtype=np.float32),
                          np.asarray(sent_values, dtype=np.float64).astype(np.float32))


def is_fill(row, fill):
    return bool(np.all(np.isnan(row))) if np.isnan(fill) else bool(np.all(row == fill))


def check_records(f, frames, acked, notes, present):
    """Records layout: every row visible is the data sent or fill; the acked
    frames found are added to `present` (every acked frame must be in one
    of the cycle's files). Extents beyond the last flush may differ between
    the group's datasets (noted, not failed: SPEC promises data up to the
    last flush only). Returns how many frames sent are in the file."""
    events = {f_.event_id: f_ for f_ in frames if f_.type == EVENT}
    waves = {(f_.event_id, f_.key.split("/")[1]): f_ for f_ in frames if f_.type == DATA}
    if "dust" not in f:
        return 0
    g = f["dust"]
    lengths = {name: g[name].shape[0] for name in ("time", "event_id", "mass", "velocity")
               + DUST_CHANNELS}
    if len(set(lengths.values())) > 1:
        notes.append("ragged /dust " + ",".join(f"{k}={v}" for k, v in lengths.items()))
    ids = g["event_id"][...]
    row_of = {int(e): i for i, e in enumerate(ids)}
    assert len(row_of) == len(ids), "an event_id appears twice"
    found = 0
    times, masses, velocities = g["time"][...], g["mass"][...], g["velocity"][...]
    for e, row in row_of.items():
        assert e in events or any(k[0] == e for k in waves), f"row {row}: event {e} never sent"
        ev = events.get(e)
        if ev is not None and row < min(len(times), len(masses), len(velocities)):
            fields = dict(kv.split("=") for kv in bytes(ev.payload).decode().split(","))
            if times[row] == ev.t0 and same_float32([masses[row], velocities[row]],
                                                    [float(fields["mass"]),
                                                     float(fields["velocity"])]):
                found += 1
                present.add(ev.seq)
            else:
                assert ev.seq > acked, f"acked EVENT {e} (seq {ev.seq}) not in the file: " \
                    f"time {times[row]} mass {masses[row]} velocity {velocities[row]}"
        elif ev is not None:
            assert ev.seq > acked, f"acked EVENT {e} (seq {ev.seq}): row {row} beyond extents"
        for ch in DUST_CHANNELS:
            sent = waves.get((e, ch))
            if row >= lengths[ch]:
                assert sent is None or sent.seq > acked, \
                    f"acked DATA seq {sent.seq}: row {row} beyond /dust/{ch} ({lengths[ch]})"
                continue
            data = g[ch][row]
            if sent is not None and np.array_equal(data, sent.samples()):
                found += 1
                present.add(sent.seq)
                continue
            assert is_fill(data, g[ch].fillvalue), \
                f"/dust/{ch} row {row} (event {e}) is neither the data sent nor fill"
            assert sent is None or sent.seq > acked, \
                f"acked DATA frame seq {sent.seq} (event {e}, {ch}) not in the file"
    return found


def check_stream(f, frames, acked, notes, present):
    """Stream layout: every frame in the index is the frame sent with that
    seq (t0, samples -- or fill where a chunk written after the last flush
    is not visible); the frames found whole are added to `present` (every
    acked frame must be in one of the cycle's files)."""
    by_seq = {f_.seq: f_ for f_ in frames if f_.type == DATA}
    found = 0
    for board in ("board0", "board1"):
        if board not in f:
            continue
        g = f[board]
        for ch in ("adc0", "adc1"):
            data = g[ch][...]
            fill = g[ch].fillvalue
            seqs, starts, ftimes = (g[f"{ch}_frame_seq"][...], g[f"{ch}_frame_start"][...],
                                    g[f"{ch}_frame_time"][...])
            if not len(seqs) == len(starts) == len(ftimes):
                notes.append(f"ragged /{board}/{ch} index {len(seqs)},{len(starts)},"
                             f"{len(ftimes)}")
            for k in range(min(len(seqs), len(starts), len(ftimes))):
                seq = int(seqs[k])
                sent = by_seq.get(seq)
                assert sent is not None and sent.key == f"{board}/{ch}", \
                    f"/{board}/{ch}_frame_seq[{k}] = {seq}: no such frame was sent"
                assert ftimes[k] == sent.t0, f"/{board}/{ch}: frame_time of seq {seq}"
                s, samples = int(starts[k]), sent.samples()
                got = data[s:s + len(samples)]
                exact = len(got) == len(samples) and np.array_equal(got, samples)
                if seq <= acked:
                    assert exact, f"/{board}/{ch}: acked frame seq {seq} at {s}: " \
                        f"{len(got)} of {len(samples)} samples, equal: {exact}"
                else:
                    ok = (got == samples[:len(got)]) | (got == fill)
                    assert ok.all(), f"/{board}/{ch}: samples of frame seq {seq} are " \
                        f"neither those sent nor fill"
                    if not exact:
                        notes.append(f"/{board}/{ch} seq {seq} partly beyond extent/fill")
                if exact:
                    present.add(seq)
                found += exact
    return found


def check_table(f, lines, notes):
    """Every station's datasets hold a prefix of the lines sent to it (or
    fill, beyond the last flush)."""
    rows = 0
    for station, sent in lines.items():
        name = f"station_{station}"
        if name not in f:
            continue
        g = f[name]
        expect = np.array(sent, dtype=np.float64).reshape(len(sent), 5)
        lengths = []
        for i, ch in enumerate(("time", "temperature", "wind", "pressure", "humidity")):
            ds = g[ch]
            values = ds[...]
            k = len(values)
            lengths.append(k)
            assert k <= len(sent), f"/{name}/{ch}: {k} rows, {len(sent)} lines sent"
            want = (expect[:k, 0].astype(np.int64) if i == 0
                    else expect[:k, i].astype(np.float32))
            fill = ds.fillvalue
            ok = (values == want) | ((values == fill) if not np.isnan(fill)
                                     else np.isnan(values))
            assert ok.all(), f"/{name}/{ch}: rows {np.nonzero(~ok)[0][:5]} neither sent " \
                             f"nor fill"
        if len(set(lengths)) > 1:
            notes.append(f"ragged /{name} {lengths}")
        rows += min(lengths)
    for name in f:
        if name.startswith("station_"):
            assert name[len("station_"):] in lines, f"/{name}: no line was sent to it"
    return rows


# ---- the test --------------------------------------------------------------------------


def frame_client(cycle, schema, address, tee):
    common = ["-c", schema, "--to", address, "--tee", tee, "--seed", cycle + 1,
              "--t0", T0 + cycle * 3600 * 10**9, "--count", 10**9]
    if cycle % 2 == 0:
        return "records", ["simulate", "accelerator", "--rate", ACCELERATOR_RATE] + common
    return "stream", ["simulate", "digitizer", "--rate", DIGITIZER_RATE, "--stations", 2,
                      "--samples", DIGITIZER_SAMPLES] + common


def start(args):
    return subprocess.Popen([H5REC] + [str(a) for a in args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_sigkill_keeps_acknowledged_frames_and_files(tmp_path):
    rng = random.Random(SEED)
    out = tmp_path / "out"
    frame_port, line_port = free_port(), free_port()
    schema = SCHEMA.format(out=out, control=tmp_path / "control.sock", frame_port=frame_port,
                           line_port=line_port, samples=SAMPLES)
    daemon = Daemon(tmp_path, schema, str(tmp_path / "control.sock"),
                    ports=(frame_port, line_port))
    known = {}          # file -> sha256 as the kill that closed its cycle left it
    rows = []
    started = time.monotonic()
    try:
        for cycle in range(KILLS):
            delay = rng.uniform(0.2, 3.0)
            daemon.start()
            relay = AckRelay(frame_port)
            ftee, ltee = tmp_path / f"frames-{cycle}.bin", tmp_path / f"lines-{cycle}.txt"
            layout, fargs = frame_client(cycle, daemon.schema_path, relay.address, ftee)
            fclient = start(fargs)
            lclient = start(["simulate", "weather", "-c", daemon.schema_path, "--tee", ltee,
                             "--rate", WEATHER_RATE, "--stations", STATIONS, "--count", 10**9,
                             "--seed", cycle + 1, "--t0", T0 + cycle * 3600 * 10**9])
            time.sleep(delay)
            kill_at = time.monotonic()
            daemon.kill()
            outputs = [c.communicate(timeout=30) for c in (fclient, lclient)]
            relay.close()
            assert fclient.returncode != 0 and lclient.returncode != 0, \
                f"a client did not notice the recorder's death: {outputs}"

            # 4. the tee is byte-exact: what reached the recorder is its prefix
            tee = ftee.read_bytes()
            assert len(tee) >= relay.forwarded and tee[:relay.forwarded] == relay.sent_copy, \
                "the relay forwarded bytes the client's --tee does not hold"
            frames, whole = parse_frames_prefix(tee[:relay.forwarded])
            acked = relay.acked_seq() or 0
            assert not relay.bad_replies, f"non-ACK replies: {relay.bad_replies[:3]}"
            seqs = [f_.seq for f_ in frames]
            assert seqs == list(range(1, len(frames) + 1)), "seq must count frames from 1"
            assert acked <= len(frames), f"ACK for seq {acked}, only {len(frames)} sent"

            # 1 + 5. files: all open, earlier ones unchanged, a new one appeared
            files = sorted(str(p) for p in out.glob("*.h5"))
            for path, digest in known.items():
                assert path in files, f"{path} disappeared"
                assert sha256(path) == digest, f"{path} changed after the daemon restarted"
            new = [p for p in files if p not in known]
            # A file appears at the first flush (complete, under its name),
            # one more per flush that first saw a group: a kill before the
            # first flush leaves none, and then nothing was acknowledged.
            assert new or not acked, f"cycle {cycle}: ACKs up to {acked} but no file"
            lines = sent_lines(ltee)
            found = table_rows = 0
            hows, notes, present = [], [], set()
            for path in new:
                f, how = open_killed(path, str(tmp_path / "scratch" / str(cycle)))
                hows.append(how)
                with f:
                    if layout == "records":
                        found += check_records(f, frames, acked, notes, present)
                    else:
                        found += check_stream(f, frames, acked, notes, present)
                    if len(new) == 1:  # rows are a prefix only within one file
                        table_rows += check_table(f, lines, notes)
                known[path] = sha256(path)
            # 2. every acknowledged frame is in one of the cycle's files
            missing = [f_.seq for f_ in frames
                       if f_.type in (DATA, EVENT) and f_.seq <= acked and f_.seq not in present]
            assert not missing, f"cycle {cycle}: acked frames in no file: seqs {missing[:10]}"

            # the window: what reached the recorder after the last ACK
            ends = frame_ends(frames)
            acked_end = ends[acked - 1] if acked else 0
            window_frames = sum(1 for f_ in frames if f_.seq > acked) + \
                (1 if whole < relay.forwarded else 0)
            window_bytes = relay.forwarded - acked_end
            last_ack_age = kill_at - relay.acks[-1][0] if relay.acks else None
            rows.append(dict(cycle=cycle, layout=layout, delay=delay,
                             sent_frames=len(frames), sent_bytes=relay.forwarded,
                             acked=acked, window_frames=window_frames,
                             window_bytes=window_bytes, ack_age=last_ack_age,
                             in_file=found, lines=sum(len(v) for v in lines.values()),
                             table_rows=table_rows, how="+".join(hows), files=len(files),
                             notes=notes))
            assert len(files) == len(known)

        # a last start on the same schema: records, then stops cleanly
        daemon.start()
        res = subprocess.run([str(a) for a in (H5REC, "simulate", "weather", "-c",
                                                daemon.schema_path, "--count", 100, "--rate",
                                                0, "--stations", 2, "--t0",
                                                T0 + KILLS * 3600 * 10**9)],
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        assert daemon.stop() == 0, daemon.log()
        assert "stopped cleanly" in daemon.log()
        files = sorted(str(p) for p in out.glob("*.h5"))
        for path, digest in known.items():
            assert sha256(path) == digest, f"{path} changed after the final run"
        assert len(files) > len(known), files
    finally:
        daemon.kill()
        print_table(rows, time.monotonic() - started)


def print_table(rows, elapsed):
    if not rows:
        return
    print(f"\nSIGKILL crash test: {len(rows)} kills, seed {SEED}, flush 1s, "
          f"{elapsed:.1f} s")
    print("kill layout   after_s frames_sent   MB_sent acked_seq | unacked_frames "
          "unacked_kB last_ack_age_s | frames_in_file lines_sent rows_in_file opened files")
    for r in rows:
        age = f"{r['ack_age']:.2f}" if r["ack_age"] is not None else "no ack"
        print(f"{r['cycle']:4d} {r['layout']:8s} {r['delay']:6.2f} {r['sent_frames']:12d} "
              f"{r['sent_bytes'] / 1e6:9.2f} {r['acked']:9d} | {r['window_frames']:14d} "
              f"{r['window_bytes'] / 1e3:10.1f} {age:>14s} | {r['in_file']:14d} {r['lines']:10d} "
              f"{r['table_rows']:12d} {r['how']:>7s} {r['files']:5d}")
        for note in sorted(set(r["notes"]))[:4]:
            print(f"       note: {note}")
    wf = [r["window_frames"] for r in rows]
    wb = [r["window_bytes"] for r in rows]
    print(f"unacked window: frames max {max(wf)}, median {statistics.median(wf):.0f}; "
          f"bytes max {max(wb) / 1e6:.2f} MB, median {statistics.median(wb) / 1e6:.2f} MB; "
          f"kills with no ACK at all: {sum(1 for r in rows if not r['acked'])}")


# ---- ACKs after an explicit flush or roll ------------------------------------------------

ACK_SCHEMA = """\
name: ackflush
output: {{ directory: "{out}", file: "ack-{{seq}}.h5", flush: 1h }}
control: {{ socket: "{control}" }}
limits: {{ max_buffer: 4MiB, max_frame: 64KiB }}
listen:
  - {{ protocol: frame, transport: tcp, address: "127.0.0.1:{frame_port}" }}
streams:
  - name: adc
    match: {{ key: "{{board}}/{{channel}}" }}
    group: "/{{board}}"
    layout: stream
    defaults: {{ dtype: int16, dt: 1.0e-6, chunk: 65536 }}
    channels: {{ adc0: {{}}, adc1: {{}} }}
"""


ACK_ROUNDS = 8


class AckedFrameLost(AssertionError):
    """An ACKed frame missing from every file after SIGKILL."""


@pytest.mark.parametrize("request_kind", ["flush", "roll"])
def test_ack_after_explicit_flush_or_roll_is_durable(tmp_path, request_kind):
    """flush: 1h, so only `h5rec flush`/`h5rec roll` make data durable. The
    writer is slowed to 0.4 ms per item (`--test-writer-delay-us`, as a busy
    disk would) so that it takes several items per batch while the digitizer
    streams 2000 frames/s; a request then usually lands inside a batch. In
    each of up to ACK_ROUNDS rounds: stream, one request, wait for its ACK,
    SIGKILL. Every frame ACKed must be in the files (the rounds stop at the
    first loss). It caught ACKs sent for items after a mid-batch flush/roll
    (fixed in 650f7b8) and new files whose structure was not durable before
    their first flush (fixed in 887e48e)."""
    out = tmp_path / "out"
    frame_port = free_port()
    daemon = Daemon(tmp_path, ACK_SCHEMA.format(out=out, control=tmp_path / "control.sock",
                                                frame_port=frame_port),
                    str(tmp_path / "control.sock"), ports=(frame_port,),
                    args=["--test-writer-delay-us", 400])
    lost = []
    try:
        for round_ in range(ACK_ROUNDS):
            daemon.start()
            relay = AckRelay(frame_port)
            tee = tmp_path / f"frames-{round_}.bin"
            client = start(["simulate", "digitizer", "-c", daemon.schema_path, "--to",
                            relay.address, "--tee", tee, "--rate", 1000, "--stations", 1,
                            "--samples", 256, "--count", 10**9,
                            "--t0", T0 + round_ * 3600 * 10**9, "--seed", round_ + 1])
            try:
                time.sleep(0.5)
                reply = daemon.h5rec(request_kind, "--socket", daemon.control_socket).stdout
                assert reply == ("flushed\n" if request_kind == "flush" else "rolled\n")
                time.sleep(0.3)  # the ACK that follows the request
                acked = relay.acked_seq()
                assert acked, f"no ACK after h5rec {request_kind}"
                daemon.kill()
                client.communicate(timeout=30)
            finally:
                client.kill()
                client.communicate()
                relay.close()
                daemon.kill()
            frames, _ = parse_frames_prefix(tee.read_bytes()[:relay.forwarded])
            present = set()
            for path in sorted(out.glob("*.h5")):
                f, _how = open_killed(str(path), str(tmp_path / "scratch" / str(round_)))
                with f:
                    g = f["board0"] if "board0" in f else {}
                    for ch in ("adc0", "adc1"):
                        if f"{ch}_frame_seq" in g:
                            seqs = g[f"{ch}_frame_seq"][...]
                            t0s = g[f"{ch}_frame_time"][...]
                            present.update(int(q) for q, t in zip(seqs, t0s)
                                           if t >= T0 + round_ * 3600 * 10**9)
            missing = [f_.seq for f_ in frames if f_.type == DATA and f_.seq <= acked
                       and f_.seq not in present]
            print(f"round {round_}: h5rec {request_kind}, acked seq {acked} of {len(frames)} "
                  f"sent; ACKed but not in any file after SIGKILL: {len(missing)} frames "
                  f"{missing[:1]}..{missing[-1:]}")
            if missing:
                lost = missing
                break
        if lost:
            raise AckedFrameLost(f"{len(lost)} ACKed frames lost: seqs {lost[0]}..{lost[-1]}")
    finally:
        daemon.kill()
