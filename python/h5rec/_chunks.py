"""HDF5's filter pipeline on the sender's side (docs/protocols.md §1.5).

A chunk encoded here is byte for byte what HDF5 (and h5recd) would store:
shuffle (H5Zshuffle.c: byte k of element i goes to k * n + i), then LZ4 in
the format of filter 32004 (docs/lz4.md: 8-byte big-endian size, 4-byte
big-endian block size, per block a 4-byte big-endian length and the block,
stored raw when LZ4 does not shrink it) or deflate (zlib's format, as
H5Z_filter_deflate writes it), then Fletcher-32 (H5checksum.c) appended
little-endian. The recorder learns nothing it must trust: it checks the
checksum and the LZ4 block table before it stores a chunk.

lz4.block and zlib release the GIL while they compress, so threads that
each encode their own chunks run in parallel.
"""
import struct
import zlib

import numpy as np

try:
    import lz4.block as _lz4_block
except ImportError:  # python3-lz4: needed only for channels compressed with lz4
    _lz4_block = None

_CHUNKS_HEAD = struct.Struct("<II")
_CHUNK_ENTRY = struct.Struct("<IIQ")


def shuffle(raw, itemsize):
    """HDF5's shuffle of the bytes `raw` of `itemsize`-byte elements."""
    n = len(raw) // itemsize
    if itemsize <= 1 or n <= 1:
        return bytes(raw)
    body = np.frombuffer(raw, dtype=np.uint8, count=n * itemsize).reshape(n, itemsize)
    return body.T.tobytes() + bytes(raw[n * itemsize:])


def lz4(raw, block_size=0):
    """The LZ4 chunk format of HDF5 filter 32004."""
    if _lz4_block is None:
        raise RuntimeError("LZ4 pre-compression needs python3-lz4")
    size = len(raw)
    block = block_size if block_size and block_size < size else size
    parts = [struct.pack(">QI", size, block)]
    view = memoryview(raw)
    for at in range(0, size, block or 1):
        piece = view[at:at + block]
        packed = _lz4_block.compress(piece, store_size=False)
        if len(packed) >= len(piece):
            packed = bytes(piece)
        parts.append(struct.pack(">I", len(packed)))
        parts.append(packed)
    return b"".join(parts)


def fletcher32(data):
    """HDF5's Fletcher-32 (H5_checksum_fletcher32): big-endian 16-bit words,
    folded every 360 words, an odd last byte as a word's high byte."""
    nwords = len(data) // 2
    words = np.frombuffer(data, dtype=">u2", count=nwords).astype(np.uint64)
    sum1 = sum2 = 0
    for at in range(0, nwords, 360):
        w = words[at:at + 360]
        t = len(w)
        sum2 += t * sum1 + int(np.dot(w, np.arange(t, 0, -1, dtype=np.uint64)))
        sum1 += int(w.sum())
        sum1 = (sum1 & 0xFFFF) + (sum1 >> 16)
        sum2 = (sum2 & 0xFFFF) + (sum2 >> 16)
    if len(data) % 2:
        sum1 += data[-1] << 8
        sum2 += sum1
        sum1 = (sum1 & 0xFFFF) + (sum1 >> 16)
        sum2 = (sum2 & 0xFFFF) + (sum2 >> 16)
    sum1 = (sum1 & 0xFFFF) + (sum1 >> 16)
    sum2 = (sum2 & 0xFFFF) + (sum2 >> 16)
    return (sum2 << 16) | sum1


def encode(raw, itemsize, filters):
    """`raw` through `filters`, the recorder's pipeline list ("shuffle",
    "lz4=BLOCK", "deflate=LEVEL", "fletcher32"), in order."""
    data = bytes(raw)
    for f in filters:
        name, _, arg = f.partition("=")
        if name == "shuffle":
            data = shuffle(data, itemsize)
        elif name == "lz4":
            data = lz4(data, int(arg or 0))
        elif name == "deflate":
            data = zlib.compress(data, int(arg or 4))
        elif name == "fletcher32":
            data += struct.pack("<I", fletcher32(data))
        else:
            raise ValueError(f"filter {f!r} cannot be run by the sender")
    return data


def payload(pipeline_id, chunks):
    """A pre-compressed DATA payload: [(stored bytes, filter mask, raw size)]."""
    parts = [_CHUNKS_HEAD.pack(pipeline_id, len(chunks))]
    parts += [_CHUNK_ENTRY.pack(len(stored), mask, raw) for stored, mask, raw in chunks]
    parts += [stored for stored, _, _ in chunks]
    return b"".join(parts)
