"""The senders of the h5rec tool against the real daemon (issue 18).

- `h5rec simulate` with -c sends what the schema declares: another
  measurement, the tags its group template names, typed fields and the
  listener's timestamp precision (weather); key templates with
  placeholders, integer channels with packing and typed event fields
  (accelerator). The recorder takes every line and frame of it.
- Line protocol has no acknowledgement, and the summary says so instead of
  "sent 0 frames"; frames that the recorder refuses make the sender fail
  and say that it was a refusal, how much was acknowledged and why it
  likely was.
- `h5rec send --event` sends an EVENT frame (with the event's waveforms)
  from the command line.
- `h5rec send` to a records stream: with -c it sends whole waveforms (the
  stream's `samples`) and refuses, before sending, what the recorder would
  refuse; without -c a refusal is explained, not "Connection reset by peer".
"""
import h5py
import numpy as np

from recorder_fixture import T0, SEC, attr_str, run_client, sent_summary
from recorder_fixture import recorder  # noqa: F401 (pytest fixture)

METEO = """
- name: met
  match: { measurement: meteo }
  group: "/{site}/{station}"
  layout: table
  defaults: { chunk: 64 }
  channels:
    air_temp: { dtype: float64 }
    gusts:    { dtype: int32 }
    counter:  { dtype: uint16 }
    state:    { dtype: string }
"""

DUST = """
- name: dust
  match: { key: "dust/{channel}" }
  group: /dust
  layout: records
  samples: 100000
  dt: 2.0e-8
  record_timeout: 200ms
  event_fields: { mass: float32, velocity: float32, run: string, hits: int32 }
  defaults: { dtype: float32 }
  channels:
    first_detector: {}
    second_detector: {}
"""

SAMPLES = 100000
FRAME_TCP = [{"protocol": "frame", "transport": "tcp"}]


def counters(rec):
    return rec.status()["counters"]


def parse_lines(text):
    """[(tags, fields, timestamp)] of the line protocol simulate sent."""
    out = []
    for line in text.splitlines():
        head, fields, ts = line.split(" ")
        measurement, *tags = head.split(",")
        assert measurement == "meteo", line
        out.append((dict(t.split("=") for t in tags),
                    dict(f.split("=", 1) for f in fields.split(",")), int(ts)))
    return out


def test_simulate_weather_sends_what_the_schema_declares(recorder, tmp_path):
    rec = recorder(METEO, listen=[{"protocol": "line", "transport": "tcp", "precision": "ms"}])
    tee = tmp_path / "lines.txt"
    res = run_client(["simulate", "weather", "-c", rec.schema_path, "--stations", 4,
                      "--count", 40, "--rate", 0, "--t0", T0, "--tee", tee])
    c = counters(rec)
    assert c["lines"] == 40, c
    for name in ("bad_lines", "bad_placeholders", "unknown_streams", "unknown_fields",
                 "bad_data"):
        assert c[name] == 0, (name, c)
    assert "sent 40 lines (160 values)" in res.stdout, res.stdout
    assert "no acknowledgement" in res.stdout and "0 frames" not in res.stdout, res.stdout
    rec.stop()

    sent = parse_lines(tee.read_text())
    assert len(sent) == 40
    by_group = {}
    for tags, fields, ts in sent:
        assert sorted(tags) == ["site", "station"]
        assert fields["gusts"].endswith("i") and fields["counter"].endswith("u")
        assert fields["state"].startswith('"') and fields["state"].endswith('"')
        # precision ms: the timestamps are milliseconds
        assert T0 // 1000000 <= ts < T0 // 1000000 + 3600 * 1000
        by_group.setdefault(f"{tags['site']}/{tags['station']}", []).append((fields, ts))
    assert sorted(by_group) == ["site1/1", "site1/3", "site2/2", "site2/4"]
    with rec.recording() as f:
        for group, rows in by_group.items():
            g = f[group]
            assert attr_str(g.attrs["site"]) == group.split("/")[0]
            np.testing.assert_array_equal(g["time"][...], [ts * 1000000 for _, ts in rows])
            np.testing.assert_array_equal(g["air_temp"][...],
                                          [float(r["air_temp"]) for r, _ in rows])
            np.testing.assert_array_equal(g["gusts"][...], [int(r["gusts"][:-1]) for r, _ in rows])
            np.testing.assert_array_equal(g["counter"][...],
                                          [int(r["counter"][:-1]) for r, _ in rows])
            assert [attr_str(v) for v in g["state"][...]] == [r["state"][1:-1] for r, _ in rows]


BOARDS = """
- name: rec
  match: { key: "rec/{board}/{channel}" }
  group: "/{board}"
  layout: records
  samples: 2000
  dt: 1.0e-6
  event_fields: { mass: float64, velocity: float32, hits: uint32, run: string }
  defaults: { dtype: int16, scale_factor: 3.0517578125e-4, add_offset: 0 }
  channels:
    up: {}
    down: { dtype: float64, scale_factor: 1, add_offset: 0 }
"""


def test_simulate_accelerator_sends_what_the_schema_declares(recorder):
    rec = recorder(BOARDS, listen=FRAME_TCP)
    res = run_client(["simulate", "accelerator", "-c", rec.schema_path, "--count", 5,
                      "--rate", 0, "--t0", T0])
    frames, _, acked, last = sent_summary(res.stdout)
    assert acked == last == frames == 1 + 3 * 5, res.stdout
    c = counters(rec)
    for name in ("unknown_streams", "unknown_channels", "unknown_fields", "bad_data",
                 "bad_placeholders"):
        assert c[name] == 0, (name, c)
    rec.stop()
    with rec.recording() as f:
        g = f["board0"]
        np.testing.assert_array_equal(g["event_id"][...], [1, 2, 3, 4, 5])
        np.testing.assert_array_equal(g["hits"][...], [1, 2, 3, 4, 5])
        assert all(attr_str(v) for v in g["run"][...])
        assert np.all(g["mass"][...] > 0) and np.all(g["velocity"][...] >= 2000)
        up, down = g["up"][...], g["down"][...]
        assert up.dtype == np.int16 and up.shape == (5, 2000)
        # the grain's pulse, in volts through the packing (counts of 10/32768 V)
        # on `up`, as they are on `down`: the same height on both detectors
        np.testing.assert_allclose((up * 3.0517578125e-4).max(axis=1), down.max(axis=1),
                                   atol=0.05)
        assert np.all(down.max(axis=1) > 1.5)


def test_simulate_fails_and_says_so_when_frames_are_refused(recorder):
    # The recorder's waveforms are 1000 samples; the built-in example sends 100000.
    rec = recorder(DUST.replace("samples: 100000", "samples: 1000"), listen=FRAME_TCP)
    res = run_client(["simulate", "accelerator", "--to", rec.address(), "--count", 3,
                      "--rate", 0], check=False)
    assert res.returncode == 1, (res.stdout, res.stderr)
    assert "sent" not in res.stdout, res.stdout
    err = res.stderr
    assert "the recorder closed the connection after" in err, err
    assert "acknowledged" in err or "durable up to seq" in err, err
    assert "refused the data" in err and "h5rec status" in err, err
    assert "Connection reset by peer" not in err, err
    assert counters(rec)["bad_data"] >= 1


def test_send_event_with_its_waveforms(recorder, tmp_path):
    rec = recorder(DUST, listen=FRAME_TCP)
    first = np.linspace(-1, 1, SAMPLES, dtype=np.float32)
    second = (first * 2).astype(np.float32)
    first.tofile(tmp_path / "first.f32")
    second.tofile(tmp_path / "second.f32")
    res = run_client(["send", "-c", rec.schema_path, "--event", "dust", "--event-id", 42,
                      "--fields", 'mass=3.8e-17,velocity=9646.3,run="Run3",hits=7i',
                      "--t0", T0, "-d", "float32",
                      "-k", "dust/first_detector", "-k", "dust/second_detector",
                      tmp_path / "first.f32", tmp_path / "second.f32"])
    frames, _, acked, last = sent_summary(res.stdout)
    assert acked == last == frames == 4, res.stdout
    # an event alone: its waveforms stay at the fill value
    res = run_client(["send", "-c", rec.schema_path, "--event", "dust", "--event-id", 43,
                      "--fields", "mass=1e-17,velocity=5000", "--t0", T0 + SEC])
    frames, _, acked, last = sent_summary(res.stdout)
    assert acked == last == frames == 2, res.stdout
    rec.stop()
    with rec.recording() as f:
        g = f["dust"]
        np.testing.assert_array_equal(g["event_id"][...], [42, 43])
        np.testing.assert_array_equal(g["time"][...], [T0, T0 + SEC])
        np.testing.assert_array_equal(g["mass"][...], np.float32([3.8e-17, 1e-17]))
        np.testing.assert_array_equal(g["velocity"][...], np.float32([9646.3, 5000]))
        np.testing.assert_array_equal(g["hits"][...], [7, 0])
        assert attr_str(g["run"][...][0]) == "Run3"
        np.testing.assert_array_equal(g["first_detector"][...][0], first)
        np.testing.assert_array_equal(g["second_detector"][...][0], second)
        assert np.all(np.isnan(g["first_detector"][...][1]))


def test_send_event_checks_against_the_schema(recorder):
    rec = recorder(DUST, listen=FRAME_TCP)
    base = ["send", "-c", rec.schema_path, "--event-id", 5]
    res = run_client(base + ["--event", "nope", "--fields", "mass=1"], check=False)
    assert res.returncode == 1 and "matches no records stream" in res.stderr, res.stderr
    res = run_client(base + ["--event", "dust", "--fields", "run=1"], check=False)
    assert res.returncode == 1 and "event field 'run' is a number" in res.stderr, res.stderr
    res = run_client(base + ["--event", "dust", "--fields", "mass=="], check=False)
    assert res.returncode == 2 and "--fields" in res.stderr, res.stderr
    assert counters(rec)["frames"] == 0


def test_send_to_records_needs_whole_waveforms(recorder, tmp_path):
    rec = recorder(DUST, listen=FRAME_TCP)
    wave = np.arange(SAMPLES, dtype=np.float32)
    path = tmp_path / "wave.f32"
    wave.tofile(path)
    key = ["-k", "dust/first_detector", "-d", "float32", "--t0", T0]

    # Without the schema: the default 65536 samples per frame are refused,
    # and the sender says what that means.
    res = run_client(["send", "--to", rec.address(), *key, path], check=False)
    assert res.returncode == 1, (res.stdout, res.stderr)
    assert "Connection reset by peer" not in res.stderr, res.stderr
    assert "refused the data" in res.stderr, res.stderr
    assert "--samples-per-frame must be the" in res.stderr, res.stderr
    assert "-c" in res.stderr, res.stderr
    refused = counters(rec)["bad_data"]
    assert refused == 1

    # With it, a wrong --samples-per-frame is refused before sending ...
    res = run_client(["send", "-c", rec.schema_path, *key, "-n", 65536, path], check=False)
    assert res.returncode == 1, (res.stdout, res.stderr)
    assert "whole waveforms of 100000 samples" in res.stderr, res.stderr
    assert "nothing sent" in res.stderr, res.stderr
    # ... as are a partial waveform and a channel the stream does not declare
    (tmp_path / "part.f32").write_bytes(wave.tobytes() + wave[:10].tobytes())
    res = run_client(["send", "-c", rec.schema_path, *key, tmp_path / "part.f32"], check=False)
    assert res.returncode == 1 and "not a whole number" in res.stderr, res.stderr
    res = run_client(["send", "-c", rec.schema_path, "-k", "dust/third_detector", "-d",
                      "float32", path], check=False)
    assert res.returncode == 1 and "no channel 'third_detector'" in res.stderr, res.stderr
    assert counters(rec)["bad_data"] == refused

    # ... and without -n it sends the stream's whole waveforms.
    res = run_client(["send", "-c", rec.schema_path, *key, path])
    frames, _, acked, last = sent_summary(res.stdout)
    assert acked == last == frames == 2, res.stdout
    rec.stop()
    with rec.recording() as f:
        np.testing.assert_array_equal(f["dust"]["first_detector"][...][0], wave)


def test_send_raw_lines_says_there_is_no_acknowledgement(recorder, tmp_path):
    rec = recorder(METEO, listen=[{"protocol": "line", "transport": "tcp"}])
    path = tmp_path / "lines.txt"
    path.write_text(f'meteo,site=a,station=1 air_temp=1.5,gusts=2i,state="ok" {T0}\n')
    res = run_client(["send", "--raw", "--to", rec.address(), path])
    assert "0 frames" not in res.stdout, res.stdout
    assert "no acknowledgement" in res.stdout, res.stdout
    assert counters(rec)["lines"] == 1
