"""`h5rec export --layout book`: the book's accelerator particle database.

"Python and HDF5" (Collette, 2013), the seed of this project, keeps one
group per dust event (/0, /1, ...) with the attributes id_dust_event,
mass, velocity and experiment_name, its three detector waveforms as 1-D
datasets with a `dt` attribute, and the root attributes timestamp and
version_number. The recorder records one row per event instead; these tests
record events with the real daemon and the real client, export the closed
file, and run an analysis written the way the book's code reads its layout
(in its own interpreter, knowing nothing of h5rec), comparing what it
computes with what was sent, exactly. h5ls and h5dump read the output too.

Also: incomplete records (left out, or kept with their fill), a file still
being written, a file of another layout, a missing file, several records
groups, an existing OUT (never replaced, no partial file left), bounded
memory on 100,000-sample waveforms, and `h5rec check`'s warning for a group
template that makes a group per event.
"""
import datetime
import json
import os
import signal
import subprocess
import textwrap

import h5py
import numpy as np
import pytest

from recorder_fixture import (H5REC, PYTHON, SANITIZED, SEC, T0, WEATHER_STREAM, attr_str,
                              run_client)
from recorder_fixture import recorder  # noqa: F401 (pytest fixture)

SAMPLES = 1000
DT = 2.0e-8
CHANNELS = ("first_detector", "second_detector", "third_detector")

DUST = f"""
- name: dust
  match: {{ key: "dust/{{channel}}" }}
  group: /dust
  layout: records
  samples: {SAMPLES}
  dt: {DT}
  record_timeout: 1s
  event_fields:
    mass:     {{ dtype: float32, units: kg }}
    velocity: {{ dtype: float32, units: "m/s" }}
    experiment_name: string
  defaults: {{ dtype: float32, units: V, compression: lz4 }}
  channels:
    first_detector:  {{ long_name: "first detector signal" }}
    second_detector: {{ long_name: "second detector signal" }}
    third_detector:  {{ long_name: "third detector signal" }}
"""
FRAME = [{"protocol": "frame", "transport": "tcp"}]

# The analysis, as the book's code uses its layout: iterate the events of
# the file, take mass and velocity from the group's attributes, build each
# waveform's time axis from its dt (`np.arange(len(dset)) * dset.attrs['dt']`),
# compute with numpy, and, as the book's second step does, store a result
# computed from the three waveforms next to the data, as an attribute of
# the event's group (the file opened "r+"). It imports h5py and numpy only.
ANALYSIS = textwrap.dedent("""
    import json, sys
    import h5py
    import numpy as np

    def update_particle_group(group):
        waves = [group[d][...] for d in ("first_detector", "second_detector",
                                         "third_detector")]
        group.attrs["charge"] = float(sum(np.sum(w, dtype=np.float64) for w in waves))

    with h5py.File(sys.argv[1], "r+") as f:
        for group in f.values():
            update_particle_group(group)

    f = h5py.File(sys.argv[1], "r")
    out = {"timestamp": int(f.attrs["timestamp"]),
           "version_number": int(f.attrs["version_number"]), "events": {}}
    for name, group in f.items():
        kinetic = 0.5 * group.attrs["mass"] * group.attrs["velocity"] ** 2
        event = {"id": int(group.attrs["id_dust_event"]),
                 "mass": float(group.attrs["mass"]),
                 "velocity": float(group.attrs["velocity"]),
                 "experiment": str(group.attrs["experiment_name"]),
                 "energy": float(kinetic),
                 "charge": float(group.attrs["charge"])}
        for det in ("first_detector", "second_detector", "third_detector"):
            dset = group[det]
            data = dset[...]
            t = np.arange(len(data)) * dset.attrs["dt"]
            event[det] = {"shape": list(dset.shape), "dtype": str(dset.dtype),
                          "dt": float(dset.attrs["dt"]), "t_end": float(t[-1]),
                          "peak_time": float(t[np.argmax(data)]),
                          "sum": float(np.sum(data, dtype=np.float64)),
                          "bytes": data.tobytes().hex()}
        out["events"][name] = event
    f.close()
    json.dump(out, sys.stdout)
""")


def waveform(event_id, channel):
    """A pulse peaking at a sample that depends on the event and channel."""
    rng = np.random.default_rng(event_id * 10 + channel)
    peak = 100 + 37 * event_id + 200 * channel
    x = np.arange(SAMPLES)
    wave = np.exp(-0.5 * ((x - peak) / 15.0) ** 2) * (1 + event_id) + rng.normal(0, 0.01, SAMPLES)
    return wave.astype(np.float32)


def send_event(rec, tmp_path, event_id, mass, velocity, name, channels=CHANNELS):
    files, keys = [], []
    for c, channel in enumerate(CHANNELS):
        if channel not in channels:
            continue
        path = tmp_path / f"ev{event_id}-{channel}.f32"
        waveform(event_id, c).tofile(path)
        files.append(path)
        keys += ["-k", f"dust/{channel}"]
    run_client(["send", "-c", rec.schema_path, "--event", "dust", "--event-id", event_id,
                "--fields", f'mass={mass!r},velocity={velocity!r},experiment_name="{name}"',
                "--t0", T0 + event_id * SEC, "--dtype", "float32", *keys, *files])


EVENTS = [(1, 3.8e-17, 9646.3), (2, 1.25e-16, 4120.5), (3, 7.1e-18, 22150.0),
          (4, 2.2e-17, 1034.75), (5, 9.9e-17, 15000.125)]
INCOMPLETE = 6  # sent without its third waveform


@pytest.fixture
def recorded(recorder, tmp_path):
    """A closed records file of five whole events and one without its
    third_detector waveform; returns (path, recorder)."""
    rec = recorder(DUST, FRAME)
    for event_id, mass, velocity in EVENTS:
        send_event(rec, tmp_path, event_id, mass, velocity, "Nov_Run3")
    send_event(rec, tmp_path, INCOMPLETE, 5.0e-17, 777.0, "Nov_Run3",
               channels=CHANNELS[:2])
    rec.stop()
    return rec.the_file(), rec


def export(*args, check=True):
    return run_client(["export", "--layout", "book", *args], check=check)


def analyse(path):
    res = subprocess.run([PYTHON, "-c", ANALYSIS, str(path)], capture_output=True, text=True,
                         timeout=120, env=dict(os.environ, HDF5_PLUGIN_PATH=""))
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_book_analysis_reads_the_export(recorded, tmp_path):
    path, _ = recorded
    out = tmp_path / "book.h5"
    res = export(path, out)
    assert "5 events" in res.stdout and "1 incomplete records left out" in res.stdout, res.stdout
    assert os.listdir(tmp_path).count(".book.h5.part") == 0

    result = analyse(out)  # no plugin path: the export is plain HDF5
    with h5py.File(path, "r") as f:
        created = attr_str(f.attrs["file_created"])
    assert result["timestamp"] == int(datetime.datetime.fromisoformat(
        created.replace("Z", "+00:00")).timestamp())
    assert result["version_number"] == 1
    assert sorted(result["events"]) == ["0", "1", "2", "3", "4"]
    for index, (event_id, mass, velocity) in enumerate(EVENTS):
        ev = result["events"][str(index)]
        assert ev["id"] == event_id
        # stored as float32 by the recorder, exported as float64 of that value
        assert ev["mass"] == float(np.float32(mass))
        assert ev["velocity"] == float(np.float32(velocity))
        assert ev["experiment"] == "Nov_Run3"
        assert ev["energy"] == 0.5 * float(np.float32(mass)) * float(np.float32(velocity)) ** 2
        for c, det in enumerate(CHANNELS):
            sent = waveform(event_id, c)
            got = ev[det]
            assert got["shape"] == [SAMPLES] and got["dtype"] == "float32"
            assert got["dt"] == DT
            assert got["bytes"] == sent.tobytes().hex(), (event_id, det)
            assert got["t_end"] == (SAMPLES - 1) * DT
            assert got["peak_time"] == int(np.argmax(sent)) * DT
            assert got["sum"] == float(np.sum(sent, dtype=np.float64))
        assert ev["charge"] == sum(float(np.sum(waveform(event_id, c), dtype=np.float64))
                                   for c in range(len(CHANNELS)))


def test_exactly_the_books_layout(recorded, tmp_path):
    path, _ = recorded
    out = tmp_path / "book.h5"
    export(path, out)
    with h5py.File(out, "r") as f:
        assert sorted(f.attrs) == ["timestamp", "version_number"]
        assert f.attrs["timestamp"].dtype == np.int64
        for name, group in f.items():
            assert isinstance(group, h5py.Group)
            assert sorted(group.attrs) == ["experiment_name", "id_dust_event", "mass",
                                           "velocity"]
            assert group.attrs["id_dust_event"].dtype == np.int64
            assert group.attrs["mass"].dtype == np.float64
            assert isinstance(group.attrs["experiment_name"], str)
            assert sorted(group) == sorted(CHANNELS)
            for det in CHANNELS:
                dset = group[det]
                assert list(dset.attrs) == ["dt"]
                assert dset.chunks is None and dset.compression is None

    ls = subprocess.run(["h5ls", "-r", str(out)], capture_output=True, text=True, timeout=60)
    assert ls.returncode == 0, ls.stderr
    assert f"/0/first_detector        Dataset {{{SAMPLES}}}" in ls.stdout, ls.stdout
    assert "/4/third_detector" in ls.stdout and "/5" not in ls.stdout, ls.stdout
    dump = subprocess.run(["h5dump", "-A", "-g", "/0", str(out)], capture_output=True,
                          text=True, timeout=60)
    assert dump.returncode == 0, dump.stderr
    for text in ('ATTRIBUTE "id_dust_event"', "H5T_STD_I64LE", '"Nov_Run3"',
                 'ATTRIBUTE "dt"', "H5T_IEEE_F64LE", "(0): 1\n"):
        assert text in dump.stdout, dump.stdout


def test_incomplete_records_kept_with_their_fill(recorded, tmp_path):
    path, _ = recorded
    with h5py.File(path, "r") as f:
        assert list(f["/dust/record_state"][...]) == [1, 1, 1, 1, 1, 2]
    out = tmp_path / "all.h5"
    res = export("--incomplete", "keep", "--version-number", "7", "--experiment-name",
                 "Dec_Run1", path, out)
    assert "6 events" in res.stdout and "1 of them incomplete" in res.stdout, res.stdout
    with h5py.File(out, "r") as f:
        assert f.attrs["version_number"] == 7
        assert sorted(f) == ["0", "1", "2", "3", "4", "5"]
        last = f["5"]
        assert last.attrs["id_dust_event"] == INCOMPLETE
        assert last.attrs["experiment_name"] == "Dec_Run1"
        np.testing.assert_array_equal(last["first_detector"][...], waveform(INCOMPLETE, 0))
        assert np.isnan(last["third_detector"][...]).all()


def test_field_renamed_and_run_as_experiment_name(recorder, tmp_path):
    """A schema whose fields have other names: --field maps them; without an
    experiment_name field the run's name is the experiment's."""
    streams = (DUST.replace("mass:", "m_kg:").replace("velocity:", "v_mps:")
               .replace("    experiment_name: string\n", ""))
    rec = recorder(streams, FRAME)
    run_client(["run", "start", "Nov_Run3", "--socket", rec.control_socket])
    wave = tmp_path / "w.f32"
    waveform(1, 0).tofile(wave)
    run_client(["send", "-c", rec.schema_path, "--event", "dust", "--event-id", 11,
                "--fields", "m_kg=1.5e-17,v_mps=3000", "--dtype", "float32",
                "-k", "dust/first_detector", "-k", "dust/second_detector",
                "-k", "dust/third_detector", wave, wave, wave])
    rec.stop()
    path = rec.the_file()
    with h5py.File(path, "r") as f:
        assert attr_str(f.attrs["run"]) == "Nov_Run3"
    out = tmp_path / "b.h5"
    res = export(path, out, check=False)
    assert res.returncode == 1 and "--field mass=FIELD" in res.stderr, res.stderr
    assert not out.exists()
    export("--field", "mass=m_kg", "-f", "velocity=v_mps", path, out)
    with h5py.File(out, "r") as f:
        g = f["0"]
        assert g.attrs["mass"] == float(np.float32(1.5e-17))
        assert g.attrs["velocity"] == 3000.0
        assert g.attrs["experiment_name"] == "Nov_Run3"
        assert "m_kg" not in g.attrs


def test_refusals_leave_no_file(recorder, recorded, tmp_path):
    path, _ = recorded
    out = tmp_path / "x.h5"

    res = export(tmp_path / "missing.h5", out, check=False)
    assert res.returncode == 1 and "No such file or directory" in res.stderr, res.stderr

    open_rec = recorder(DUST, FRAME)
    send_event(open_rec, tmp_path, 1, 1e-17, 100.0, "live")
    run_client(["flush", "--socket", open_rec.control_socket])
    res = export(open_rec.the_file(), out, check=False)
    assert res.returncode == 1 and "still marked open for writing" in res.stderr, res.stderr
    open_rec.stop()

    weather = recorder(WEATHER_STREAM, [{"protocol": "line", "transport": "tcp"}])
    run_client(["send", "--to", weather.address(), "--raw", "-"],
               input="weather,station=1 temperature=20.5 1767225600000000000\n")
    weather.stop()
    res = export(weather.the_file(), out, check=False)
    assert res.returncode == 1 and "holds no records-layout group" in res.stderr, res.stderr

    res = run_client(["export", "--layout", "netcdf", path, out], check=False)
    assert res.returncode == 2 and "unknown layout" in res.stderr, res.stderr
    res = run_client(["export", path, out], check=False)
    assert res.returncode == 2 and "--layout is required" in res.stderr, res.stderr
    res = export("--group", "/nope", path, out, check=False)
    assert res.returncode == 1 and "no group /nope" in res.stderr, res.stderr

    out.write_bytes(b"mine")
    res = export(path, out, check=False)
    assert res.returncode == 1 and "exists" in res.stderr, res.stderr
    assert out.read_bytes() == b"mine"
    out.unlink()
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".part") or n == "x.h5"]


def test_several_records_groups_need_group(recorder, tmp_path):
    streams = (DUST.replace('"dust/{channel}"', '"{board}/{channel}"')
               .replace("group: /dust", 'group: "/{board}"'))
    rec = recorder(streams, FRAME)
    wave = tmp_path / "w.f32"
    waveform(1, 0).tofile(wave)
    for board, event_id in (("b1", 1), ("b2", 2)):
        run_client(["send", "-c", rec.schema_path, "--event", board, "--event-id", event_id,
                    "--fields", 'mass=1e-17,velocity=10,experiment_name="x"',
                    "--dtype", "float32", "-k", f"{board}/first_detector",
                    "-k", f"{board}/second_detector", "-k", f"{board}/third_detector",
                    wave, wave, wave])
    rec.stop()
    # under SWMR the second board's group starts a new file, which carries
    # the first's group over
    path = rec.files()[-1]
    out = tmp_path / "b.h5"
    res = export(path, out, check=False)
    assert res.returncode == 1 and "2 records groups" in res.stderr, res.stderr
    assert "/b1" in res.stderr and "/b2" in res.stderr and not out.exists()
    export("--group", "/b2", path, out)
    with h5py.File(out, "r") as f:
        assert list(f) == ["0"] and f["0"].attrs["id_dust_event"] == 2


def test_reference_schema_bounded_memory(recorder, tmp_path):
    """The accelerator's own waveforms (100,000 float32, LZ4) from `h5rec
    simulate`: every exported waveform equals its row in the recording, and
    the export's memory stays that of a few waveforms, whatever the count."""
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "schemas",
                           "accelerator.yaml")) as f:
        text = f.read()
    streams = text.split("streams:\n", 1)[1]
    rec = recorder(streams, [{"protocol": "frame", "transport": "tcp", "token": '"change-me"'}],
                   limits={"max_buffer": "256MiB", "max_frame": "64MiB"})
    events = 40
    run_client(["simulate", "accelerator", "-c", rec.schema_path, "--count", events,
                "--rate", 0, "--t0", T0], timeout=180)
    rec.stop()
    path = rec.the_file()
    out = tmp_path / "book.h5"
    measure = ("import resource, subprocess, sys\n"
               "r = subprocess.run(sys.argv[1:])\n"
               "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    # Under AddressSanitizer freed memory is parked in a quarantine (256
    # MiB by default, more than every waveform read): cap it, and allow for
    # it and for ASan's shadow memory (1/8 of what is touched).
    env = dict(os.environ)
    limit_mib = 32
    if SANITIZED == "address":
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=16"
        limit_mib += 16 + (limit_mib + 16) / 8 + 16
    res = subprocess.run([PYTHON, "-c", measure, H5REC, "export", "--layout", "book",
                          "--experiment-name", "sim", str(path), str(out)],
                         capture_output=True, text=True, timeout=300, env=env)
    code, peak_kib = map(int, res.stdout.split()[-2:])
    assert code == 0, res.stdout + res.stderr
    raw_mib = events * 3 * 100000 * 4 / 2**20
    # 19 MiB measured: HDF5 and one waveform per channel, well below the
    # 46 MiB of waveforms
    assert peak_kib < limit_mib * 1024, f"export peaked at {peak_kib} KiB for {raw_mib:.0f} MiB"
    print(f"export of {raw_mib:.0f} MiB of waveforms: peak RSS {peak_kib} KiB")

    # Interrupted while it writes events: exit 1, no OUT, no part file. It
    # is stopped (SIGSTOP) as soon as its part file appears, long before
    # the last of these events, and signalled then.
    out, part = tmp_path / "sig.h5", tmp_path / ".sig.h5.part"
    proc = subprocess.Popen([H5REC, "export", "--layout", "book", "-e", "sim", str(path),
                             str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    while not part.exists() and proc.poll() is None:
        pass
    proc.send_signal(signal.SIGSTOP)
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGCONT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "interrupted by signal 15" in err, err
    assert not out.exists() and not part.exists()
    with h5py.File(path, "r") as src, h5py.File(tmp_path / "book.h5", "r") as f:
        assert len(f) == events
        for i in range(events):
            g = f[str(i)]
            assert g.attrs["id_dust_event"] == src["/dust/event_id"][i]
            assert g.attrs["mass"] == src["/dust/mass"][i]
            for det in CHANNELS:
                assert g[det][...].tobytes() == src["/dust/" + det][i].tobytes()


def test_packed_channel_unpacked_and_multirow_chunks(recorder, tmp_path):
    """A channel packed as int16 with scale_factor (CF) is exported as the
    physical float64 values the book's waveforms are, its fill as NaN; rows
    read from chunks of several rows come out whole."""
    # each send waits for its ACK (a flush): give an event time for both
    streams = (DUST.replace("record_timeout: 1s", "record_timeout: 30s")
               .replace('first_detector:  { long_name: "first detector signal" }',
                            'first_detector:  { dtype: int16, scale_factor: 0.001, '
                            'fill: -32768, chunk: 4 }')
               .replace('second_detector: { long_name: "second detector signal" }',
                        'second_detector: { chunk: 4 }'))
    rec = recorder(streams, FRAME)
    raw = {}
    for event_id in range(1, 7):
        counts = (np.arange(SAMPLES, dtype=np.int16) * event_id) % 20000 - 10000
        raw[event_id] = counts
        first, second = tmp_path / f"a{event_id}.i16", tmp_path / f"b{event_id}.f32"
        counts.tofile(first)
        waveform(event_id, 1).tofile(second)
        keys = ["-k", "dust/second_detector", "-k", "dust/third_detector"]
        run_client(["send", "-c", rec.schema_path, "--event", "dust", "--event-id", event_id,
                    "--fields", 'mass=1e-17,velocity=10,experiment_name="p"',
                    "--dtype", "float32", *keys, second, second])
        if event_id != 6:  # event 6 lacks its first_detector
            run_client(["send", "-c", rec.schema_path, "--event-id", event_id,
                        "--dtype", "int16", "-k", "dust/first_detector", first])
    rec.stop()
    out = tmp_path / "p.h5"
    export("--incomplete", "keep", rec.the_file(), out)
    with h5py.File(out, "r") as f:
        for index, event_id in enumerate(range(1, 7)):
            g = f[str(index)]
            assert g.attrs["id_dust_event"] == event_id
            first = g["first_detector"]
            assert first.dtype == np.float64 and list(first.attrs) == ["dt"]
            if event_id == 6:
                assert np.isnan(first[...]).all()
            else:
                np.testing.assert_array_equal(first[...], raw[event_id] * 0.001)
            assert g["second_detector"][...].tobytes() == waveform(event_id, 1).tobytes()


PER_EVENT = """
name: pergroup
listen: [{ protocol: frame, transport: tcp, address: "127.0.0.1:7999" }]
streams:
  - name: dust
    match: { key: "dust/{event_id}/{channel}" }
    group: "/{event_id}"
    layout: records
    samples: 1000
    dt: 2.0e-8
    channels: { first_detector: {} }
"""


def test_check_warns_on_a_group_per_event(tmp_path):
    schema = tmp_path / "pergroup.yaml"
    schema.write_text(PER_EVENT)
    res = run_client(["check", schema])
    assert "warning" in res.stderr and "group per event" in res.stderr, res.stderr
    assert "layout: records" in res.stderr and "h5rec export --layout book" in res.stderr
    assert "streams[dust].group" in res.stderr
    res = run_client(["check", "-q", schema])
    assert res.stdout == "" and "group per event" in res.stderr
    # a group per board is bounded: no warning
    board = PER_EVENT.replace("{event_id}", "{board}")
    schema.write_text(board)
    assert "warning" not in run_client(["check", schema]).stderr
    for name in ("accelerator.yaml", "weather.yaml", "digitizer.yaml"):
        res = run_client(["check", os.path.join(os.path.dirname(__file__), "..", "..",
                                                "schemas", name)])
        assert res.stderr == "", res.stderr
