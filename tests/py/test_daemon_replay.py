"""Acceptance: how bytes arrive does not change what is recorded.

A frame stream (digitizer-like, two boards, four channels) and a line stream
(weather) are produced once by the simulators with --tee, then replayed with
`h5rec send --raw` into fresh daemons: once in 1-byte writes, once in large
coalesced writes. All datasets of the two recordings (and of the live
original) must be identical in shape, dtype, values and data attributes,
and hold exactly what the byte streams carry. A recording may be more than
one file (groups that first have data while a file is live start the next
one): its files are read as one, concatenated in order.
"""
import h5py
import numpy as np

from recorder_fixture import DATA, HELLO, T0, Recording, parse_frames, run_client
from recorder_fixture import recorder  # noqa: F401 (pytest fixture)

STREAMS = """
- name: adc
  match: { key: "{board}/{channel}" }
  group: "/{board}"
  layout: stream
  defaults: { dtype: int16, units: V, dt: 1.0e-6, scale_factor: 3.0517578125e-4,
              add_offset: 0, chunk: 1000, compression: lz4 }
  channels:
    adc0: {}
    adc1: {}
    adc2: {}
    adc3: { dt: 1.0e-3, compression: none }
- name: weather
  match: { measurement: weather }
  group: "/station{station}"
  layout: table
  defaults: { dtype: float32, chunk: 64, compression: deflate, shuffle: true }
  channels:
    temperature: { units: degC }
    wind: { units: "m/s" }
    pressure: { units: hPa }
    humidity: { units: "%" }
"""
LISTEN = [{"protocol": "frame", "transport": "tcp"}, {"protocol": "line", "transport": "tcp"}]
BOARDS, FRAMES, PER_FRAME = 2, 6, 300
LINES, STATIONS = 400, 7

# Object references differ between files by construction; dims are compared
# through the scales' names instead. start_time/end_time are those of the
# data in each file, which depend on where the files split.
SKIP_ATTRS = {"DIMENSION_LIST", "REFERENCE_LIST", "start_time", "end_time"}


def contents(paths):
    """{dataset path: (shape, dtype, values, attrs, dim scale names)} of a
    recording (its files' datasets concatenated in file order), and
    {group path: attrs} (the root's attrs name the file and its ports)."""
    datasets, groups = {}, {}

    def attrs_of(obj):
        return {k: obj.attrs[k] for k in obj.attrs if k not in SKIP_ATTRS}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            dims = [[s.name for s in d.values()] for d in obj.dims]
            values = obj[...]
            if name in datasets and not name.endswith("sample_time"):
                values = np.concatenate([datasets[name][2], values])
            datasets[name] = (values.shape, obj.dtype, values, attrs_of(obj), dims)
        else:
            groups[name] = attrs_of(obj)

    for path in paths:
        with h5py.File(path, "r") as f:
            f.visititems(visit)
    return datasets, groups


def assert_same_contents(a, b, what):
    da, ga = contents(a)
    db, gb = contents(b)
    assert sorted(ga) == sorted(gb), what
    for name in ga:
        assert sorted(ga[name]) == sorted(gb[name]), (what, name)
        for k in ga[name]:
            assert np.array_equal(ga[name][k], gb[name][k]), (what, name, k)
    assert sorted(da) == sorted(db), what
    for name, (shape, dtype, values, attrs, dims) in da.items():
        shape2, dtype2, values2, attrs2, dims2 = db[name]
        assert (shape, dtype, dims) == (shape2, dtype2, dims2), (what, name)
        nan = values.dtype.kind == "f"
        assert np.array_equal(values, values2, equal_nan=nan), (what, name)
        assert sorted(attrs) == sorted(attrs2), (what, name)
        for k in attrs:
            nan = np.asarray(attrs[k]).dtype.kind == "f"  # a _FillValue of NaN
            assert np.array_equal(attrs[k], attrs2[k], equal_nan=nan), (what, name, k)


def check_against_streams(paths, frames_bin, lines_txt):
    """The file holds exactly the samples and lines of the two byte streams."""
    expect = {}
    for fr in parse_frames(frames_bin):
        if fr.type == HELLO:
            continue
        assert fr.type == DATA
        expect.setdefault(fr.key, []).append(fr)
    assert len(expect) == BOARDS * 4
    lines = {}
    for line in lines_txt.decode().splitlines():
        head, fields, ts = line.split(" ")
        station = head.split("station=")[1]
        vals = dict(kv.split("=") for kv in fields.split(","))
        lines.setdefault(station, []).append((int(ts), float(vals["temperature"])))
    assert len(lines) == STATIONS

    with Recording(paths) as f:
        for key, frames in expect.items():
            board, channel = key.split("/")
            g = f[board]
            np.testing.assert_array_equal(g[channel][...],
                                          np.concatenate([fr.samples() for fr in frames]))
            np.testing.assert_array_equal(g[f"{channel}_frame_time"][...],
                                          [fr.t0 for fr in frames])
            np.testing.assert_array_equal(g[f"{channel}_frame_seq"][...],
                                          [fr.seq for fr in frames])
            np.testing.assert_array_equal(g[f"{channel}_frame_start"][...],
                                          np.arange(len(frames)) * PER_FRAME)
        for station, rows in lines.items():
            g = f[f"station{station}"]
            np.testing.assert_array_equal(g["time"][...], [t for t, _ in rows])
            np.testing.assert_array_equal(g["temperature"][...],
                                          np.array([v for _, v in rows]).astype(np.float32))


def test_one_byte_and_coalesced_writes_record_the_same(recorder, tmp_path):
    # The original streams, sent live (frames with HELLO and ACKs).
    live = recorder(STREAMS, listen=LISTEN)
    frames_tee, lines_tee = tmp_path / "frames.bin", tmp_path / "lines.txt"
    run_client(["simulate", "digitizer", "-t", live.address(0), "--stations", BOARDS,
                "--count", FRAMES, "--samples", PER_FRAME, "--rate", 0, "--t0", T0,
                "--tee", frames_tee])
    run_client(["simulate", "weather", "-t", live.address(1), "--stations", STATIONS,
                "--count", LINES, "--rate", 0, "--t0", T0, "--tee", lines_tee])
    live.stop()
    frames_bin, lines_txt = frames_tee.read_bytes(), lines_tee.read_bytes()

    replays = {}
    for label, extra in (("1-byte", ["--write-size", 1]), ("coalesced", [])):
        rec = recorder(STREAMS, listen=LISTEN)
        run_client(["send", "--raw", *extra, "-t", rec.address(0), frames_tee])
        run_client(["send", "--raw", *extra, "-t", rec.address(1), lines_tee])
        log = rec.stop()
        assert "warning" not in log and "error" not in log, (label, log)
        replays[label] = rec.files()

    check_against_streams(replays["coalesced"], frames_bin, lines_txt)
    assert_same_contents(replays["1-byte"], replays["coalesced"], "1-byte vs coalesced")
    assert_same_contents(live.files(), replays["coalesced"], "live vs replay")
