"""`h5rec check` lists exactly the datasets the recorder creates.

For every layout (table with an own_time channel, a string channel and an
integer channel with fill; records with event fields, a string field and
szip + Fletcher-32 waveforms; stream with an event table and lz4 +
Fletcher-32), the real `h5rec check` prints its dataset lines, the real
daemon records data of every channel, field and event, and h5py compares,
group by group, the listing against the file: the same dataset names (none
missing, none extra), and per dataset its dtype, shape, chunk shape, filters
in pipeline order with their parameters, and dimension scales.

The check listing once said "none" for the filters of every time axis and
index (the engine stores them with shuffle + deflate 1), left out records'
`record_state`, and gave event fields the wrong filters.
"""
import re
import socket

import h5py
import numpy as np
import pytest

from recorder_fixture import SEC, SOURCE, T0, run_client
from recorder_fixture import recorder  # noqa: F401 (pytest fixture)
from reliability_helpers import wait_for

import os
import sys

sys.path.insert(0, os.path.join(SOURCE, "python"))
import h5rec  # noqa: E402

SAMPLES = 64  # per records waveform
STREAMS = f"""
- name: lab
  match: {{ measurement: lab }}
  group: "/{{bench}}"
  layout: table
  channels:
    temp:   {{ dtype: float32, compression: deflate, level: 6, chunk: 512 }}
    count:  {{ dtype: int32, fill: -1, chunk: 256 }}
    status: {{ dtype: string, own_time: true, compression: deflate, chunk: 128 }}
    flag:   {{ dtype: uint8, compression: deflate }}
- name: dust
  match: {{ key: "dust/{{channel}}" }}
  group: /dust
  layout: records
  samples: {SAMPLES}
  dt: 2.0e-8
  event_fields: {{ mass: float32, hits: int32, run: string, gate: uint8 }}
  defaults: {{ dtype: float32, chunk: 2, compression: szip, szip_pixels_per_block: 16,
              fletcher32: true }}
  channels:
    first: {{}}
    second: {{ dtype: int16, szip_coding: ec, szip_pixels_per_block: 8 }}
    third: {{ dtype: uint8, compression: deflate, chunk: 3 }}
- name: adc
  match: {{ key: "{{board}}/{{channel}}" }}
  group: "/{{board}}"
  layout: stream
  events: true
  record_timeout: 1s
  event_fields: {{ level: float32, channel_no: uint8 }}
  defaults: {{ dtype: int16, dt: 1.0e-6, chunk: 1024 }}
  channels:
    adc0: {{ compression: lz4, fletcher32: true }}
    adc1: {{ dtype: float64, compression: lz4, block_size: 4KiB, shuffle: true }}
    adc2: {{ dtype: uint16 }}
"""
GROUPS = {"lab": "b1", "dust": "dust", "adc": "board1"}

FILTER_IDS = {"shuffle": 2, "deflate": 1, "lz4": 32004, "szip": 4, "fletcher32": 3}
SZIP_EC, SZIP_NN = 4, 32  # H5_SZIP_EC_OPTION_MASK, H5_SZIP_NN_OPTION_MASK

# "    name  dtype  shape  chunk (…) | contiguous  filters; dims"
LINE_RE = re.compile(r"^    (\S+)\s+(\S+)\s+(\([^)]*\))\s+(chunk \([^)]*\)|contiguous)\s+"
                     r"(.*?); (.*)$")


def parse_check(text):
    """{stream: {dataset: (dtype, shape, chunk, filters, dims)}} from the
    dataset lines of `h5rec check`."""
    streams, current = {}, None
    for line in text.splitlines():
        if line.startswith("stream "):
            current = streams.setdefault(line.split()[1], {})
            continue
        m = LINE_RE.match(line)
        if current is None or not m:
            continue
        name = m.group(1)
        assert name not in current, f"{name} listed twice:\n{text}"
        current[name] = m.group(2, 3, 4, 5, 6)
    return streams


def expected_filters(text):
    """The filters a check line names, as [(HDF5 filter id, {param: value})]
    in pipeline order."""
    if text == "none":
        return []
    out = []
    parts = re.split(r", (?![^(]*\))", text)  # not inside "lz4 (…, block …)"
    k = 0
    while k < len(parts):
        p = parts[k]
        if p == "shuffle" or p == "fletcher32":
            out.append((FILTER_IDS[p], {}))
        elif p.startswith("deflate level "):
            out.append((1, {"level": int(p.split()[-1])}))
        elif p.startswith("lz4 (filter 32004, block "):
            block = p[len("lz4 (filter 32004, block "):-1]
            out.append((32004, {"block": 0 if block == "whole chunk" else block}))
        elif p.startswith("szip "):
            ppb = parts[k + 1]
            assert ppb.endswith(" pixels per block"), text
            k += 1
            out.append((4, {"coding": p.split()[1], "ppb": int(ppb.split()[0])}))
        else:
            raise AssertionError(f"unknown filter {p!r} in {text!r}")
        k += 1
    return out


SIZES = {"B": 1, "KiB": 1024, "MiB": 1 << 20}


def block_bytes(text):
    number, unit = re.match(r"([\d.]+)\s*(\w+)", text).groups()
    return int(float(number) * SIZES[unit])


def file_filters(dset):
    """The filters of DSET as stored, [(id, flags, cd_values)] in order."""
    plist = dset.id.get_create_plist()
    return [plist.get_filter(i)[:3] for i in range(plist.get_nfilters())]


def compare_filters(where, dset, listed):
    want = expected_filters(listed)
    got = file_filters(dset)
    assert [f for f, _ in want] == [f for f, _, _ in got], (where, listed, got)
    for (fid, params), (_, _, cd) in zip(want, got):
        if fid == 1:
            assert cd[0] == params["level"], (where, listed, cd)
        elif fid == 32004:
            assert (cd[0] if cd else 0) == (block_bytes(params["block"]) if params["block"]
                                            else 0), (where, listed, cd)
        elif fid == 4:
            mask = SZIP_EC if params["coding"] == "ec" else SZIP_NN
            assert cd[0] & (SZIP_EC | SZIP_NN) == mask, (where, listed, cd)
            assert cd[1] == params["ppb"], (where, listed, cd)
    # h5py's own reading of the same pipeline
    ids = [f for f, _ in want]
    assert dset.shuffle == (2 in ids), (where, listed)
    assert dset.fletcher32 == (3 in ids), (where, listed)
    if 1 in ids:
        assert (dset.compression, dset.compression_opts) == (
            "gzip", dict(want)[1]["level"]), (where, listed)
    elif 4 in ids:
        assert dset.compression == "szip", (where, listed)
    elif 32004 not in ids:
        assert dset.compression is None, (where, listed)


def compare_dtype(where, dset, listed):
    if listed == "string":
        info = h5py.check_string_dtype(dset.dtype)
        assert info is not None and info.length is None and info.encoding == "utf-8", (
            where, dset.dtype)
    else:
        assert dset.dtype == np.dtype(listed).newbyteorder("<"), (where, dset.dtype, listed)


def compare_shape(where, dset, shape, chunk):
    dims = [d.strip() for d in shape.strip("()").split(",") if d.strip()]
    assert dset.ndim == len(dims), (where, dset.shape, shape)
    for axis, d in enumerate(dims):
        if d.isdigit():  # a fixed length
            assert dset.shape[axis] == dset.maxshape[axis] == int(d), (where, dset.shape, shape)
        else:  # rows, events, samples, frames: unlimited
            assert dset.maxshape[axis] is None, (where, dset.maxshape, shape)
    if chunk == "contiguous":
        assert dset.chunks is None, (where, dset.chunks)
    else:
        listed = tuple(int(c) for c in chunk[len("chunk "):].strip("()").split(",") if c.strip())
        assert dset.chunks == listed, (where, dset.chunks, chunk)


def compare_dims(where, dset, dims):
    if dims.startswith("dimension scale"):
        assert h5py.h5ds.is_scale(dset.id), where
    elif dims.startswith("no scale"):
        assert not h5py.h5ds.is_scale(dset.id), where
        assert all(len(d) == 0 for d in dset.dims), where
    else:
        names = [n.strip() for n in re.fullmatch(r"dims \[(.*)\]", dims).group(1).split(",")]
        assert [d.label for d in dset.dims] == names, (where, dims)
        assert [d[0].name.rsplit("/", 1)[1] for d in dset.dims] == names, (where, dims)


def send_table(rec):
    lines = []
    for k in range(5):
        t = T0 + k * SEC
        fields = [f"temp={20 + k}.5", f"flag={k % 2}i"]
        if k != 2:
            fields.append(f"count={k * 10}i")
        if k % 2 == 0:
            fields.append(f'status="state {k}"')
        lines.append(f"lab,bench=b1 {','.join(fields)} {t}\n")
    with socket.create_connection(rec.bound[0][1], timeout=30) as sock:
        sock.sendall("".join(lines).encode())
    return len(lines)


def send_frames(rec):
    with h5rec.Sender(rec.address(1), name="pytest") as s:
        for e in range(1, 4):
            t0 = T0 + e * SEC
            s.send("dust/first", np.linspace(0, 1, SAMPLES, dtype=np.float32), t0=t0,
                   event_id=e)
            s.send("dust/second", np.arange(SAMPLES, dtype=np.int16) * e, t0=t0, event_id=e)
            s.send("dust/third", np.full(SAMPLES, e, dtype=np.uint8), t0=t0, event_id=e)
            s.event("dust", {"mass": 1.5 * e, "hits": e, "run": f"r{e}", "gate": e}, t0=t0,
                    event_id=e)
        for k in range(4):
            t0 = T0 + k * SEC // 100
            e = k + 1 if k < 3 else 0
            s.send("board1/adc0", np.arange(300, dtype=np.int16) + k, t0=t0, event_id=e)
            s.send("board1/adc1", np.linspace(k, k + 1, 200), t0=t0, event_id=e)
            s.send("board1/adc2", np.arange(100, dtype=np.uint16), t0=t0, event_id=e)
            if e:
                s.event("board1", {"level": 0.25 * e, "channel_no": e}, t0=t0, event_id=e)
        s.wait(timeout=60)


@pytest.fixture
def recorded(recorder):
    rec = recorder(STREAMS, listen=[{"protocol": "line", "transport": "tcp"},
                                    {"protocol": "frame", "transport": "tcp"}],
                   # every group in one file: under SWMR a later group starts a new one
                   output={"flush": "200ms", "swmr": "false"})
    nlines = send_table(rec)
    wait_for(lambda: rec.status()["counters"]["lines"] == nlines, what="the lines")
    send_frames(rec)
    # every event's row is final: records and the stream's event table
    wait_for(lambda: (rec.status()["engine"]["records_closed"],
                      rec.status()["engine"]["events_closed"]) == (3, 3), what="the events' close")
    rec.stop()
    return rec


def test_check_lists_exactly_the_datasets_of_the_file(recorded):
    listing = parse_check(run_client(["check", recorded.schema_path]).stdout)
    assert sorted(listing) == sorted(GROUPS), listing
    with h5py.File(recorded.the_file(), "r") as f:
        for stream, group in GROUPS.items():
            g = f[group]
            listed = listing[stream]
            in_file = {name for name, obj in g.items() if isinstance(obj, h5py.Dataset)}
            assert set(g) == in_file, (group, set(g) - in_file)
            assert set(listed) - in_file == set(), (stream, "listed, not in the file")
            assert in_file - set(listed) == set(), (stream, "in the file, not listed")
            for name, (dtype, shape, chunk, filters, dims) in listed.items():
                dset, where = g[name], f"{group}/{name}"
                assert dset.size > 0 or dset.maxshape[0] is None, where
                compare_dtype(where, dset, dtype)
                compare_shape(where, dset, shape, chunk)
                compare_filters(where, dset, filters)
                compare_dims(where, dset, dims)
        # the data went where the listing says: nothing above compared empty groups
        assert len(f["b1/status_time"]) == 3 and len(f["b1/time"]) == 5
        assert len(f["dust/record_state"]) == 3 and len(f["board1/event_state"]) == 3
