"""h5rec: send frames to the h5rec recorder from numpy, and read what it
wrote with xarray. See docs/client.md ("Python package").

    import h5rec
    with h5rec.Sender("tcp:127.0.0.1:7600") as s:
        s.send("board1/adc0", samples, t0=t0_ns)
    ds = h5rec.open_group("/data/weather", "/15", start="2026-01-01")
"""
from ._crc32c import crc32c
from ._time import to_ns
from .sender import ProtocolError, RefusedError, Sender, dtype_code, encode_frame, field_set

__all__ = ["Sender", "ProtocolError", "RefusedError", "open_group", "list_files", "crc32c", "to_ns",
           "dtype_code", "encode_frame", "field_set"]
__version__ = "0.1.0"


def open_group(paths_or_dir, group, start=None, end=None):
    """See h5rec.reader.open_group (imported on first use: h5py and xarray
    are needed for reading only)."""
    from .reader import open_group as _open_group
    return _open_group(paths_or_dir, group, start=start, end=end)


def list_files(paths_or_dir):
    """See h5rec.reader.list_files."""
    from .reader import list_files as _list_files
    return _list_files(paths_or_dir)
