"""Faults: nothing acknowledged is lost, and nothing is acknowledged that may
be lost, when the disk misbehaves (LD_PRELOAD shims from tests/tools/preload).
"""
import numpy as np

from recorder_fixture import preload_env
from recorder_fixture import recorder  # noqa: F401 (pytest fixture)
from reliability_helpers import PER_FRAME, AckingSender, frame_samples

STREAM = """
- name: adc
  match: { key: "{board}/{channel}" }
  group: "/{board}"
  layout: stream
  defaults: { dtype: int16, dt: 1.0e-6, chunk: 4096, compression: deflate }
  channels: { adc0: {} }
"""
def stored_seqs(rec, board):
    """{seq: samples} of the frames of BOARD in the recording."""
    out = {}
    for path in rec.files():
        import h5py
        with h5py.File(path, "r") as f:
            if board not in f:
                continue
            g = f[board]
            starts, seqs, data = g["adc0_frame_start"][...], g["adc0_frame_seq"][...], g["adc0"][...]
            for k, seq in enumerate(seqs):
                out[int(seq)] = data[int(starts[k]):int(starts[k]) + PER_FRAME]
    return out


def test_failed_fsync_ends_the_file_and_acks_nothing_it_may_have_lost(recorder):
    """One fsync fails with EIO (the shim), in the middle of a stream of
    frames with ACKs. After a failed fsync Linux may have dropped the pages
    it could not write, and a later fsync that succeeds says nothing about
    them: the recorder ends that file, acknowledges nothing written since
    its last good fsync, and closes the sender's connection so it resends.
    Every frame ACKed before is in the file; the recorder goes on: a new
    sender's frames all go into a new file and are all ACKed."""
    rec = recorder(STREAM, listen=[{"protocol": "frame", "transport": "tcp"}],
                   output={"flush": "200ms"},
                   env=preload_env("fsync_fault", H5REC_FSYNC_AT=8, H5REC_FSYNC_ERRNO=5))
    address = rec.bound[0][1]
    first = AckingSender(address, "a", 200, 0.02).run()
    first.wait_acked()
    assert first.closed_by_peer, "the connection of a sender that may have lost data stays open"
    assert first.acked < first.sent, (first.acked, first.sent)
    first.close()
    log = rec.log()
    assert "fsync_fault: fsync call 8 fails" in log, log
    assert "fsync failed: the file ends here" in log, log
    second = AckingSender(address, "b", 20, 0.01).run()
    second.wait_acked()
    assert second.acked == second.sent == 20 and not second.closed_by_peer
    second.close()
    rec.stop()
    assert len(rec.files()) >= 2, rec.files()
    stored = stored_seqs(rec, "a")
    for seq in range(1, first.acked + 1):
        assert seq in stored, f"ACKed frame {seq} of 'a' is in no file"
        np.testing.assert_array_equal(stored[seq], frame_samples(seq))
    assert sorted(stored_seqs(rec, "b")) == list(range(1, 21))
