"""Pre-compressed waveforms (issue 19, docs/protocols.md §1.5), end to end.

The Python Sender asks the real h5recd how each channel stores its chunks
(DESCRIBE), runs that pipeline itself (shuffle, LZ4, deflate, Fletcher-32)
and sends every waveform as the chunk the recorder writes untouched with
H5Dwrite_chunk. Required:

- LZ4, shuffle+LZ4+Fletcher-32 and shuffle+deflate waveforms read back
  bit-exact with h5py through Debian's LZ4 plugin and through hdf5plugin
  (each in its own process, HDF5 caching plugins), and the stored chunks
  are the sender's bytes (read_direct_chunk);
- the chunks that went straight to the file and the ones that had to wait
  (the first records, before the SWMR file exists, and after a roll) are
  all stored as the sender made them: none is decoded and encoded again;
- a corrupt chunk is refused and not ACKed when it can be told without
  decoding (Fletcher-32) or with `verify_chunks: decode` (deflate), its
  sender told why in an ERROR frame, and
  with neither it is stored and fails cleanly at read time (an error, no
  crash);
- a sender whose pipeline id is not the channel's is refused with an ERROR
  frame naming both pipelines; DESCRIBE of a channel that takes no
  pre-compressed chunks answers why;
- the C client (h5rec simulate --precompress) and the recorder encode
  the same bytes as an independent encoder (h5rec._chunks);
- the C client's encoder threads (--encode-threads) send byte for byte
  what one thread sends: the same frames with the same seqs, EVENT frames
  in their place, and the rows read back as the samples sent.
"""
import json
import os
import re
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

from recorder_fixture import (DEBIAN_PLUGIN_DIR, PYTHON, SEC, SOURCE, T0, run_client,
                              sent_summary)
from recorder_fixture import recorder  # noqa: F401 (pytest fixture)

sys.path.insert(0, os.path.join(SOURCE, "python"))
import h5rec  # noqa: E402
from h5rec import _chunks  # noqa: E402
from h5rec.sender import DATA, encode_frame  # noqa: E402

SAMPLES = 20000
EVENTS = 12

DUST = """
- name: dust
  match: { key: "dust/{channel}" }
  group: /dust
  layout: records
  samples: 20000
  dt: 2.0e-8
  record_timeout: 5s
  defaults: { dtype: float32 }
  channels:
    lz4:      { compression: lz4 }
    lz4sf:    { compression: lz4, shuffle: true, fletcher32: true, block_size: 16KiB }
    deflate:  { compression: deflate, level: 3 }
    checked:  { compression: deflate, verify_chunks: decode }
    plain:    { compression: deflate, shuffle: false }
- name: adc
  match: { key: "adc/{channel}" }
  group: /adc
  layout: stream
  defaults: { dtype: int16, dt: 1.0e-6, compression: lz4, chunk: 1000 }
  channels:
    x: { shuffle: true, fletcher32: true }
    y: { compression: deflate, level: 1 }
- name: ev
  match: { key: "ev/{channel}" }
  group: /ev
  layout: stream
  events: true
  defaults: { dtype: int16, dt: 1.0e-6, compression: lz4 }
  channels: { z: {} }
"""
CHANNELS = ("lz4", "lz4sf", "deflate")

READER = textwrap.dedent("""
    import hashlib, json, sys
    if sys.argv[2] == "hdf5plugin":
        import hdf5plugin  # noqa: F401
    import h5py
    out = {}
    with h5py.File(sys.argv[1], "r") as f:
        for name in sys.argv[3:]:
            data = f["/dust/" + name][...]
            out[name] = [hashlib.sha256(row.tobytes()).hexdigest() for row in data]
    json.dump(out, sys.stdout)
""")


def waveform(channel, i):
    rng = np.random.default_rng(1000 * i + len(channel))
    t = np.arange(SAMPLES, dtype=np.float32)
    return (np.sin(t / (50.0 + i)) * 100 + rng.normal(0, 0.5, SAMPLES)).astype(np.float32)


def read_with(path, which, names):
    env = dict(os.environ)
    env.pop("HDF5_PLUGIN_PATH", None)
    if which == "debian":
        env["HDF5_PLUGIN_PATH"] = DEBIAN_PLUGIN_DIR
    out = subprocess.run([PYTHON, "-c", READER, str(path), which, *names], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def sha(a):
    import hashlib
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def frame_listener():
    return [{"protocol": "frame", "transport": "tcp"}]


def test_precompressed_waveforms_read_back_bit_exact(recorder):
    rec = recorder(DUST, listen=frame_listener(), output={"flush": "200ms"})
    sent = {c: [] for c in CHANNELS}
    stored = {c: [] for c in CHANNELS}
    with h5rec.Sender(rec.address(0), name="pre", precompress=True) as s:
        info = s.describe("dust/lz4sf")
        assert info["filters"] == ["shuffle", "lz4=16384", "fletcher32"]
        assert info["chunk"] == SAMPLES and info["layout"] == "records"
        for i in range(1, EVENTS + 1):
            for c in CHANNELS:
                w = waveform(c, i)
                sent[c].append(w)
                stored[c].append(_chunks.encode(w.tobytes(), 4,
                                                s.describe("dust/" + c)["filters"]))
                s.send("dust/" + c, w, t0=T0 + i * SEC, event_id=i)
            if i == EVENTS // 2:
                s.wait()   # the later chunks find the file open: direct writes
        s.wait()
    engine = rec.status()["engine"]
    # the records after the first ACK went to the file as they came; the
    # ones before it waited for the file, held as they came
    assert engine["chunks_precompressed"] == 3 * EVENTS, engine
    assert engine["chunks_decoded"] == 0, engine
    assert engine["chunks_refused"] == 0, engine
    rec.stop()
    path = rec.the_file()
    expected = {c: [sha(w) for w in sent[c]] for c in CHANNELS}
    assert read_with(path, "debian", CHANNELS) == expected
    assert read_with(path, "hdf5plugin", CHANNELS) == expected
    with h5py.File(path, "r") as f:
        for c in CHANNELS:
            ds = f["/dust/" + c]
            assert ds.shape == (EVENTS, SAMPLES)
            # every stored chunk is the sender's bytes, those that waited
            # for the file included
            for row in range(EVENTS):
                mask, chunk = ds.id.read_direct_chunk((row, 0))
                assert mask == 0 and chunk == stored[c][row], (c, row)


def corrupt_last_byte(data):
    return data[:-1] + bytes([data[-1] ^ 0x40])


def corrupt_middle(data):
    mid = len(data) // 2
    return data[:mid] + bytes([data[mid] ^ 0xFF]) + data[mid + 1:]


@pytest.mark.parametrize("channel,corrupt,reason", [
    ("lz4sf", corrupt_middle, "Fletcher-32 checksum does not match"),
    ("checked", corrupt_middle, "deflate stream does not decode"),
    ("lz4", lambda d: d[:20] + d[24:], "LZ4 block table is inconsistent"),
])
def test_corrupt_chunk_is_refused_and_not_acked(recorder, channel, corrupt, reason):
    rec = recorder(DUST, listen=frame_listener(), output={"flush": "200ms"})
    s = h5rec.Sender(rec.address(0), name="bad", precompress=True, max_replays=1,
                     reconnect_timeout=5, timeout=10)
    good = s.send_chunk("dust/" + channel, waveform(channel, 1), T0 + SEC, 1)
    s.wait(good)
    bad = s.send_chunk("dust/" + channel, waveform(channel, 2), T0 + 2 * SEC, 2,
                       corrupt=corrupt)
    # the writer's refusal reaches the sender as an ERROR frame with the
    # reason, before the connection closes (as a refusal on the loop does)
    with pytest.raises(h5rec.sender.RefusedError) as refused:
        s.wait(bad, timeout=10)
    assert f"seq {bad} (dust/{channel}): " in str(refused.value), refused.value
    assert re.search("pre-compressed chunk refused: .*" + reason, str(refused.value)), \
        refused.value
    assert s.durable_seq < bad
    rec.wait_log("pre-compressed chunk refused: .*" + reason, timeout=10)
    assert rec.status()["engine"]["chunks_refused"] >= 1
    rec.stop()
    with h5py.File(rec.the_file(), "r") as f:
        data = f["/dust/" + channel][...]
    assert data.shape[0] == 1
    assert np.array_equal(data[0], waveform(channel, 1))


def test_corrupt_chunk_without_verification_fails_at_read_time(recorder):
    """deflate without Fletcher-32 and with verify_chunks: check: only the
    zlib header is checked, so a chunk corrupt inside is stored; reading
    that row is an error (never a crash), every other row reads."""
    rec = recorder(DUST, listen=frame_listener(), output={"flush": "200ms"})
    with h5rec.Sender(rec.address(0), name="bad", precompress=True) as s:
        s.wait(s.send_chunk("dust/plain", waveform("plain", 1), T0 + SEC, 1))
        # the file is open now: the next chunks go to it as they are (a
        # chunk the recorder has to decode for buffering is refused)
        s.send_chunk("dust/plain", waveform("plain", 2), T0 + 2 * SEC, 2,
                     corrupt=corrupt_middle)
        s.send_chunk("dust/plain", waveform("plain", 3), T0 + 3 * SEC, 3)
        s.wait()
    rec.stop()
    code = textwrap.dedent("""
        import sys, h5py, numpy as np
        with h5py.File(sys.argv[1], "r") as f:
            ds = f["/dust/plain"]
            np.asarray(ds[0]); np.asarray(ds[2])
            try:
                ds[1]
            except OSError as e:
                print("read error:", e)
                sys.exit(0)
        sys.exit(3)
    """)
    out = subprocess.run([PYTHON, "-c", code, str(rec.the_file())], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, (out.returncode, out.stdout, out.stderr)
    assert "read error" in out.stdout


def test_pipeline_mismatch_is_refused_with_its_reason(recorder):
    rec = recorder(DUST, listen=frame_listener())
    s = h5rec.Sender(rec.address(0), name="stale", precompress=True, timeout=10,
                     reconnect_timeout=5)
    info = s.describe("dust/lz4")
    # chunks made for another pipeline (a schema that changed since)
    w = waveform("lz4", 1)
    payload = _chunks.payload(info["id"] ^ 1, [(_chunks.lz4(w.tobytes()), 0, w.nbytes)])
    s.last_seq += 1
    s._write(encode_frame(DATA, "dust/lz4", payload, 9, s.last_seq, T0, 1, chunks=True,
                          ack=True))
    with pytest.raises(h5rec.sender.RefusedError) as refused:
        s.wait(s.last_seq, timeout=10)
    assert "pipeline mismatch" in str(refused.value)
    assert 'pipeline=\\"lz4=0\\"' in str(refused.value) or 'pipeline="lz4=0"' in \
        str(refused.value)
    rec.wait_log("pipeline mismatch: chunks made for pipeline id", timeout=5)


def test_describe_says_why_a_channel_takes_no_chunks(recorder):
    rec = recorder(DUST, listen=frame_listener())
    s = h5rec.Sender(rec.address(0), name="ask", precompress=True)
    with pytest.raises(h5rec.sender.RefusedError, match="no channel|not declared|nope"):
        s.describe("dust/nope")
    s.close(wait=False)


ACCEL = """
- name: dust
  match: { key: "dust/{channel}" }
  group: /dust
  layout: records
  samples: 100000
  dt: 2.0e-8
  record_timeout: 5s
  event_fields: { mass: float32, velocity: float32 }
  defaults: { dtype: float32 }
  channels:
    first_detector:  { compression: lz4, shuffle: true, fletcher32: true }
    second_detector: { compression: deflate, level: 1, fletcher32: true }
    third_detector:  { compression: lz4 }
"""


def test_simulate_precompress_stores_what_the_recorder_would_have(recorder):
    """The C client's encoder (h5rec simulate --precompress) against the
    recorder's own: the same simulated events, sent pre-compressed to one
    recorder and as samples to another, give the same samples, read
    through Debian's plugin, and both files' chunks hold the bytes an
    independent encoder (h5rec._chunks) makes."""
    files, sent_bytes = {}, {}
    for mode in ("precompress", "samples"):
        rec = recorder(ACCEL, listen=frame_listener(), output={"flush": "200ms"})
        args = ["simulate", "accelerator", "--to", rec.address(), "--count", 6, "--rate", 0,
                "--seed", 7, "--t0", T0] + (["--precompress"] if mode == "precompress" else [])
        res = run_client(args)
        frames, sent_bytes[mode], acked, last = sent_summary(res.stdout)
        assert acked == last, res.stdout
        rec.stop()
        files[mode] = rec.the_file()
    # the waveforms crossed the network compressed (LZ4 and deflate on
    # smooth pulses over noise: well under the raw size)
    assert sent_bytes["precompress"] < 0.8 * sent_bytes["samples"], sent_bytes
    names = ("first_detector", "second_detector", "third_detector")
    assert read_with(files["precompress"], "debian", names) == \
        read_with(files["samples"], "debian", names)
    # LZ4 only: zlib's output depends on its stream settings (the engine
    # keeps one stream per worker), deflate rows are checked decoded above
    codecs = {"first_detector": ["shuffle", "lz4=0"], "third_detector": ["lz4=0"]}
    with h5py.File(files["precompress"], "r") as a, h5py.File(files["samples"], "r") as b:
        for name in codecs:
            for f in (a, b):
                ds = f["/dust/" + name]
                assert ds.shape == (6, 100000)
                for row in range(6):
                    # the codec's bytes are the ones this file's independent
                    # encoder makes; a chunk the recorder rewrote after a
                    # flush may carry padding after them (and its checksum)
                    mask, stored = ds.id.read_direct_chunk((row, 0))
                    coded = _chunks.encode(ds[row].tobytes(), 4, codecs[name])
                    assert mask == 0 and stored[:len(coded)] == coded, (f.filename, name, row)
        np.testing.assert_array_equal(a["/dust/mass"][...], b["/dust/mass"][...])


def test_simulate_encode_threads_send_what_one_thread_sends(recorder, tmp_path):
    """h5rec simulate accelerator --precompress --encode-threads 4: each
    event is an EVENT frame then three waveforms, encoded on four threads
    while the next event is made. What went out (--tee) is byte for byte
    what one thread sends: same frames, same order, same seqs, events
    between the waveforms where they were; and every row, event id and
    field reads back as the same events sent as samples."""
    files, tees = {}, {}
    for mode in ("samples", "1", "4"):
        rec = recorder(ACCEL, listen=frame_listener(), output={"flush": "200ms"})
        tee = tmp_path / ("sent-%s.bin" % mode)
        args = ["simulate", "accelerator", "--to", rec.address(), "--count", 12, "--rate", 0,
                "--seed", 11, "--t0", T0, "--tee", tee]
        if mode != "samples":
            args += ["--precompress", "--encode-threads", mode]
        res = run_client(args)
        frames, _, acked, last = sent_summary(res.stdout)
        # the HELLO, a DESCRIBE per channel, then an EVENT and 3 waveforms per event
        assert acked == last == frames == 1 + (mode != "samples") * 3 + 12 * 4, res.stdout
        rec.stop()
        files[mode], tees[mode] = rec.the_file(), tee.read_bytes()
    assert tees["4"] == tees["1"]
    assert len(tees["4"]) < 0.8 * len(tees["samples"])
    names = ("first_detector", "second_detector", "third_detector")
    assert read_with(files["4"], "debian", names) == read_with(files["samples"], "debian", names)
    with h5py.File(files["4"], "r") as a, h5py.File(files["samples"], "r") as b:
        assert a["/dust/first_detector"].shape == (12, 100000)
        for name in ("event_id", "mass", "velocity", "time"):
            np.testing.assert_array_equal(a["/dust/" + name][...], b["/dust/" + name][...])
        np.testing.assert_array_equal(a["/dust/event_id"][...], np.arange(1, 13))
    res = run_client(["simulate", "accelerator", "--to", "tcp:127.0.0.1:9", "--count", 1,
                      "--encode-threads", 2], check=False)
    assert res.returncode == 2 and "--encode-threads is for --precompress" in res.stderr, \
        res.stderr


def test_simulate_precompress_says_why_a_channel_takes_no_chunks(recorder):
    rec = recorder(ACCEL.replace("records", "records\n  # szip").replace(
        "{ compression: lz4 }", "{ compression: szip }"), listen=frame_listener())
    res = run_client(["simulate", "accelerator", "--to", rec.address(), "--count", 1,
                      "--rate", 0, "--precompress"], check=False)
    assert res.returncode != 0
    assert "third_detector" in res.stderr and "szip" in res.stderr, res.stderr


def test_precompress_to_a_recorder_that_predates_describe_fails_fast():
    """A recorder older than issue 19 closes the connection on DESCRIBE
    (type 5 is a protocol error there). The C client must say so at once,
    not wait for an answer that cannot come, even when it reconnects."""
    import socket
    import threading
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(20)
    stop = threading.Event()

    def old_recorder():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            data = b""
            while len(data) < 45 + 40:   # HELLO (40 + name), then a frame header
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            conn.close()

    thread = threading.Thread(target=old_recorder, daemon=True)
    thread.start()
    try:
        res = run_client(["simulate", "accelerator", "--to",
                          "tcp:127.0.0.1:%d" % server.getsockname()[1], "--count", 1,
                          "--rate", 0, "--precompress", "--reconnect", 3], check=False,
                         timeout=30)
    finally:
        stop.set()
        server.close()
    assert res.returncode != 0
    assert "older than pre-compressed chunks" in res.stderr, res.stderr


def test_send_chunks_encodes_on_threads_and_keeps_the_order(recorder):
    """Sender.send_chunks encodes on a thread pool and sends in the order
    given: the rows are the ones send_chunk would have stored."""
    rec = recorder(DUST, listen=frame_listener(), output={"flush": "200ms"})
    waves = [("dust/" + c, waveform(c, i), T0 + i * SEC, i)
             for i in range(1, 9) for c in ("lz4sf", "deflate")]
    with h5rec.Sender(rec.address(0), name="threads", precompress=True) as s:
        seqs = s.send_chunks(waves, threads=4)
        assert seqs == sorted(seqs) and len(seqs) == len(waves)
        s.wait()
    rec.stop()
    with h5py.File(rec.the_file(), "r") as f:
        for key, w, _t0, i in waves:
            np.testing.assert_array_equal(f["/dust/" + key.split("/")[1]][i - 1], w)


def adc(i, n):
    rng = np.random.default_rng(i)
    t = np.arange(n) + i * n
    return (np.sin(t / 300.0) * 2000 + rng.integers(-6, 7, n)).astype(np.int16)


def test_stream_layout_takes_frames_of_whole_chunks(recorder):
    """A stream channel's frames of whole chunks (3 chunks of 1000 samples
    each) land at chunk-aligned positions, bit-exact, with the frame index
    as for samples; every stored chunk is the sender's."""
    rec = recorder(DUST, listen=frame_listener(), output={"flush": "200ms"})
    frames = {c: [adc(i + (10 if c == "y" else 0), 3000) for i in range(8)] for c in "xy"}
    with h5rec.Sender(rec.address(0), name="adc", precompress=True) as s:
        info = s.describe("adc/x")
        assert info["layout"] == "stream" and info["chunk"] == 1000
        assert info["filters"] == ["shuffle", "lz4=0", "fletcher32"]
        seqs = {}
        for i in range(8):
            for c in "xy":
                seqs[(c, i)] = s.send_chunk("adc/" + c, frames[c][i], T0 + i * 3 * 10**6)
            if i == 3:
                s.wait()
        s.wait()
    rec.stop()
    with h5py.File(rec.the_file(), "r") as f:
        for c in "xy":
            np.testing.assert_array_equal(f["/adc/" + c][...], np.concatenate(frames[c]))
            np.testing.assert_array_equal(f["/adc/%s_frame_start" % c][...],
                                          np.arange(8) * 3000)
            np.testing.assert_array_equal(f["/adc/%s_frame_seq" % c][...],
                                          [seqs[(c, i)] for i in range(8)])
            info = {"x": ["shuffle", "lz4=0", "fletcher32"], "y": ["shuffle", "deflate=1"]}[c]
            ds = f["/adc/" + c]
            for k in range(24):   # held before the file existed, or straight in
                raw = np.concatenate(frames[c])[k * 1000:(k + 1) * 1000].tobytes()
                assert ds.id.read_direct_chunk((k * 1000,))[1] == \
                    _chunks.encode(raw, 2, info), (c, k)
    names = ("x", "y")
    code = textwrap.dedent("""
        import sys, json, hashlib, h5py
        with h5py.File(sys.argv[1], "r") as f:
            print(json.dumps([hashlib.sha256(f["/adc/" + n][...].tobytes()).hexdigest()
                              for n in sys.argv[2:]]))
    """)
    env = dict(os.environ, HDF5_PLUGIN_PATH=DEBIAN_PLUGIN_DIR)
    out = subprocess.run([PYTHON, "-c", code, str(rec.the_file()), *names], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [sha(np.concatenate(frames[c])) for c in names]


def test_stream_events_cover_precompressed_frames(recorder):
    """In a stream with `events: true`, a pre-compressed frame's chunks are
    covered by its event's row as a frame of samples is; a frame of no
    event by none."""
    rec = recorder(DUST, listen=frame_listener(), output={"flush": "200ms"})
    with h5rec.Sender(rec.address(0), name="ev", precompress=True) as s:
        info = s.describe("ev/z")
        assert info["layout"] == "stream"
        n = info["chunk"]
        frames = [(adc(1, 2 * n), 7), (adc(2, n), 0), (adc(3, n), 8)]
        for i, (samples, event) in enumerate(frames):
            s.send_chunk("ev/z", samples, T0 + i * SEC, event_id=event)
        s.wait()
    rec.stop()
    with h5py.File(rec.the_file(), "r") as f:
        np.testing.assert_array_equal(f["/ev/z"][...], np.concatenate([a for a, _ in frames]))
        np.testing.assert_array_equal(f["/ev/event_id"][...], [7, 8])
        np.testing.assert_array_equal(f["/ev/z_event_start"][...], [0, 3 * n])
        np.testing.assert_array_equal(f["/ev/z_event_count"][...], [2 * n, n])


def test_stream_chunks_after_unaligned_samples_are_refused(recorder):
    rec = recorder(DUST, listen=frame_listener(), output={"flush": "200ms"})
    s = h5rec.Sender(rec.address(0), name="mixed", max_replays=0, reconnect_timeout=2,
                     timeout=10)
    s.wait(s.send("adc/x", adc(0, 500), T0))
    bad = s.send_chunk("adc/x", adc(1, 1000), T0 + 10**6)
    with pytest.raises((ConnectionError, TimeoutError, h5rec.sender.RefusedError)):
        s.wait(bad, timeout=10)
    rec.wait_log("not a whole number of 1000-sample chunks", timeout=5)
    rec.stop()
    with h5py.File(rec.the_file(), "r") as f:
        np.testing.assert_array_equal(f["/adc/x"][...], adc(0, 500))


@pytest.mark.parametrize("threads", [1, 3])
def test_send_precompress_stream_frames_of_several_chunks(recorder, tmp_path, threads):
    """h5rec send --precompress (the C client) on a stream channel: frames
    of 3000 samples go as 3 chunks each and read back as sent; on 3
    encoder threads a frame's chunks are encoded apart and still go out
    as one frame, in order."""
    rec = recorder(DUST, listen=frame_listener(), output={"flush": "200ms"})
    samples = np.concatenate([adc(i, 3000) for i in range(4)])
    samples.tofile(tmp_path / "x.i16")
    res = run_client(["send", "--to", rec.address(), "-k", "adc/x", "-d", "int16", "-n", 3000,
                      "--t0", T0, "--dt", 1000, "--precompress", "--encode-threads", threads,
                      tmp_path / "x.i16"])
    frames, nbytes, acked, last = sent_summary(res.stdout)
    assert acked == last, res.stdout
    assert nbytes < samples.nbytes, res.stdout   # compressed on the wire
    rec.stop()
    with h5py.File(rec.the_file(), "r") as f:
        np.testing.assert_array_equal(f["/adc/x"][...], samples)
        np.testing.assert_array_equal(f["/adc/x_frame_start"][...], np.arange(4) * 3000)
        np.testing.assert_array_equal(f["/adc/x_frame_seq"][...], np.arange(3, 7))


def test_describe_is_bounded_per_connection(recorder):
    """A peer that asks DESCRIBE without end (and never reads the answers)
    is cut off after 4096: answers queued for it cannot grow without bound."""
    import socket
    rec = recorder(DUST, listen=frame_listener())
    host, port = rec.address(0).split(":")[1:]
    sock = socket.create_connection((host, int(port)))
    frames = b"".join(encode_frame(5, "dust/lz4", b"", 0, seq, crc=False)
                      for seq in range(1, 5000))
    try:
        sock.sendall(frames)
    except OSError:
        pass
    rec.wait_log("more than 4096 DESCRIBE frames on one connection", timeout=10)
    sock.close()


def test_rolling_acks_and_info_stay_the_same(recorder):
    """Everything else as for samples: a roll in the middle of a run of
    pre-compressed waveforms gives two files whose rows together are every
    waveform sent, every frame is acknowledged, every chunk is stored as the
    sender made it (those waiting for either file too), and `h5rec info`
    reports the compression ratio of the chunks the sender made."""
    rec = recorder(DUST, listen=frame_listener(), output={"flush": "200ms"})
    sent = []
    with h5rec.Sender(rec.address(0), name="roll", precompress=True) as s:
        for i in range(1, 9):
            w = waveform("lz4sf", i)
            sent.append(w)
            s.send("dust/lz4sf", w, t0=T0 + i * SEC, event_id=i)
            if i == 4:
                s.wait()
                rec.control("roll")
        assert s.wait() == s.last_seq
    engine = rec.status()["engine"]
    assert engine["chunks_decoded"] == 0 and engine["chunks_precompressed"] == 8, engine
    rec.stop()
    files = sorted(rec.files())
    assert len(files) == 2, files
    rows = []
    filters = ["shuffle", "lz4=16384", "fletcher32"]
    for path in files:
        with h5py.File(path, "r") as f:
            ds = f["/dust/lz4sf"]
            for row in range(ds.shape[0]):
                w = sent[len(rows) + row]
                assert ds.id.read_direct_chunk((row, 0)) == \
                    (0, _chunks.encode(w.tobytes(), 4, filters)), (path, row)
            rows += list(ds[...])
    np.testing.assert_array_equal(np.array(rows), np.array(sent))
    out = run_client(["info", files[1]]).stdout
    line = next(ln for ln in out.splitlines() if "/dust/lz4sf" in ln)
    ratio = float(line.rsplit("ratio ", 1)[1].split()[0])
    stored = sum(len(_chunks.encode(w.tobytes(), 4, filters)) for w in sent[4:])
    expected = sum(w.nbytes for w in sent[4:]) / stored
    assert abs(ratio - expected) <= 0.01 * expected, (line, expected)
