"""Reading a group across h5rec's rolled files as one xarray.Dataset
(docs/client.md, "Python package"; the layouts are in docs/engine.md).

Every file that holds the group is opened with h5py (SWMR read where the
file allows it, so live files work), the group's data is read into memory,
concatenated along its unlimited axes, sorted by time (a stable sort: rows
of equal time keep the order of the files and of their arrival) and rows
that are exact duplicates of another row of the same time are dropped.
"""
import glob
import os

import h5py
import numpy as np
import xarray as xr

from ._time import to_ns

TIME_UNITS = "nanoseconds since 1970-01-01T00:00:00Z"
# HDF5 dimension-scale and netCDF bookkeeping, not data attributes.
_SKIP_ATTRS = {"CLASS", "NAME", "REFERENCE_LIST", "DIMENSION_LIST", "_Netcdf4Dimid",
               "_Netcdf4Coordinates", "_nc3_strict", "start_time", "end_time"}


def list_files(paths_or_dir):
    """A directory (its *.h5 files, not the hidden .NAME.part being built),
    a file, a glob pattern, or a list of any of them -> sorted file list."""
    if isinstance(paths_or_dir, (str, os.PathLike)):
        paths_or_dir = [paths_or_dir]
    files = []
    for p in paths_or_dir:
        p = os.fspath(p)
        if os.path.isdir(p):
            files += [f for f in glob.glob(os.path.join(p, "*.h5"))
                      if not os.path.basename(f).startswith(".")]
        elif any(c in p for c in "*?["):
            files += glob.glob(p)
        else:
            files.append(p)
    return sorted(dict.fromkeys(files))


def _open(path):
    try:
        return h5py.File(path, "r", swmr=True)
    except OSError:
        return h5py.File(path, "r")  # not in the latest format: not a SWMR file


def _attr_value(v):
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray) and v.dtype.kind in "SO":
        return [_attr_value(x) for x in v.tolist()]
    if isinstance(v, np.generic):
        return v.item()
    return v


def _attrs(obj):
    return {k: _attr_value(v) for k, v in obj.attrs.items() if k not in _SKIP_ATTRS}


def _read(ds, n=None):
    if h5py.check_string_dtype(ds.dtype) is not None:
        data = ds.asstr()[...] if n is None else ds.asstr()[:n]
        return np.asarray(data, dtype=object)
    return ds[...] if n is None else ds[:n]


def _is_scale(ds):
    return h5py.h5ds.is_scale(ds.id)


def _dim_names(ds):
    names = []
    for i, dim in enumerate(ds.dims):
        names.append(os.path.basename(dim[0].name) if len(dim) else None)
    return names


class _Var:
    """A dataset of the group over the files: parts[i] is what file i holds."""
    __slots__ = ("dims", "parts", "attrs", "dtype", "tail")

    def __init__(self, dims, attrs, dtype, tail=()):
        self.dims, self.attrs, self.dtype, self.tail = dims, attrs, dtype, tail
        self.parts = {}

    def filler(self, n):
        """n rows of the fill value, for a file that lacks this dataset (the
        schema gained a channel between two files)."""
        if self.dtype == object or h5py.check_string_dtype(self.dtype) is not None:
            return np.full((n,) + self.tail, "", dtype=object)
        fill = self.attrs.get("_FillValue")
        if fill is None:
            fill = np.nan if self.dtype.kind == "f" else 0
        return np.full((n,) + self.tail, fill, dtype=self.dtype)


def _is_time(attrs):
    return str(attrs.get("units", "")).startswith("nanoseconds since 1970")


def open_group(paths_or_dir, group, start=None, end=None):
    """The group `group` (e.g. "/15" or "15") of every file in
    `paths_or_dir` that holds it, as one xarray.Dataset.

    Table and records layouts: indexed by `time` (datetime64[ns]), sorted,
    exact duplicate rows dropped; records keep their `sample_time` axis.
    Stream layout: per channel X a `X_sample_time` axis (datetime64[ns],
    frame_time[k] + (i - frame_start[k])·dt) plus the frame index on
    `X_frame_time`. A stream's event table (`events: true`) is on
    `event_time` like any table; its `X_event_start`/`X_event_count` are
    made to index the Dataset's `X` (they index one file's in the files).
    `start`/`end` (int ns, numpy.datetime64, datetime, ISO
    string) keep times in [start, end). Raises FileNotFoundError when no
    file holds the group."""
    path = "/" + str(group).strip("/")
    t_lo = None if start is None else to_ns(start)
    t_hi = None if end is None else to_ns(end)
    variables, scales, fixed, streams = {}, {}, {}, {}
    group_attrs, used = {}, []
    for fname in list_files(paths_or_dir):
        with _open(fname) as f:
            g = f.get(path)
            if not isinstance(g, h5py.Group):
                continue
            group_attrs = _attrs(g)
            _collect(len(used), g, variables, scales, fixed, streams)
            used.append(fname)
    if not used:
        raise FileNotFoundError(f"no file of {paths_or_dir!r} holds the group {path}")

    out_vars, coords = {}, {}
    for dim, scale in scales.items():
        files = sorted(scale.parts)
        t = np.concatenate([scale.parts[i] for i in files])
        on_dim = {name: v for name, v in variables.items() if v.dims and v.dims[0] == dim}
        data = {name: np.concatenate([v.parts[i] if i in v.parts
                                      else v.filler(len(scale.parts[i])) for i in files])
                for name, v in on_dim.items()}
        keep = _sorted_unique_rows(t, data, t_lo if _is_time(scale.attrs) else None,
                                   t_hi if _is_time(scale.attrs) else None)
        coords[dim] = _coord(dim, t[keep], scale.attrs)
        for name, arr in data.items():
            out_vars[name] = xr.Variable(on_dim[name].dims, arr[keep], on_dim[name].attrs)
    for name, (values, attrs) in fixed.items():
        coords[name] = xr.Variable((name,), values, attrs)
    for channel, s in streams.items():
        kept = _stream_vars(channel, s, t_lo, t_hi, out_vars, coords)
        _event_spans(channel, kept, out_vars)
    ds = xr.Dataset(out_vars, coords=coords, attrs=group_attrs)
    ds = xr.decode_cf(ds, decode_times=False)
    ds.attrs["h5rec_group"] = path
    ds.attrs["h5rec_files"] = [os.path.abspath(p) for p in used]
    return ds


def _collect(fi, g, variables, scales, fixed, streams):
    """Read the group of file number `fi` into the accumulators."""
    members = {k: g[k] for k in g if isinstance(g[k], h5py.Dataset)}
    stream_channels = {k[:-len("_frame_time")] for k in members
                       if k.endswith("_frame_time") and k[:-len("_frame_time")] in members
                       and k[:-len("_frame_time")] + "_frame_start" in members}
    stream_names = set()
    for ch in stream_channels:
        stream_names.update({ch, ch + "_frame_time", ch + "_frame_start", ch + "_frame_seq"})
    # an event table's sample indexes count from the file's first sample:
    # made to count over every file's samples read so far (_event_spans)
    sample_offset = {ch: sum(len(x) for x in streams[ch]["samples"]) if ch in streams else 0
                     for ch in stream_channels}
    # A live (SWMR) file's datasets may be seen between the extents of two of
    # them being updated: use the length all of an axis's datasets have.
    lengths = {}
    for name, ds in members.items():
        if name in stream_names:
            continue
        dims = [name] if _is_scale(ds) else _dim_names(ds)[:1]
        for dim in dims:
            if dim is not None:
                lengths[dim] = min(lengths.get(dim, ds.shape[0]), ds.shape[0])
    for name, ds in members.items():
        if name in stream_names:
            continue
        if _is_scale(ds):
            if ds.maxshape[0] is None:      # an unlimited axis: concatenated
                s = scales.get(name)
                if s is None:
                    s = scales[name] = _Var((name,), _attrs(ds), ds.dtype)
                s.parts[fi] = _read(ds, lengths.get(name, ds.shape[0]))
            elif name not in fixed:         # a fixed axis (records' sample_time)
                fixed[name] = (_read(ds), _attrs(ds))
            continue
        dims = _dim_names(ds)
        dims = tuple(d if d is not None else f"{name}_dim{i}" for i, d in enumerate(dims))
        v = variables.get(name)
        if v is None:
            v = variables[name] = _Var(dims, _attrs(ds), ds.dtype, ds.shape[1:])
        n = lengths.get(dims[0], ds.shape[0]) if dims else None
        v.parts[fi] = _read(ds, n)
        ch = name[:-len("_event_start")] if name.endswith("_event_start") else None
        if ch in sample_offset:
            v.parts[fi] = v.parts[fi].astype(np.uint64) + np.uint64(sample_offset[ch])
    for ch in stream_channels:
        s = streams.setdefault(ch, {"samples": [], "time": [], "start": [], "seq": [],
                                    "attrs": _attrs(members[ch]),
                                    "frame_attrs": _attrs(members[ch + "_frame_time"]),
                                    "dtype": members[ch].dtype})
        nsamples = members[ch].shape[0]
        nframes = min(members[ch + "_frame_time"].shape[0],
                      members[ch + "_frame_start"].shape[0])
        seq_ds = members.get(ch + "_frame_seq")
        if seq_ds is not None:
            nframes = min(nframes, seq_ds.shape[0])
        starts = members[ch + "_frame_start"][:nframes].astype(np.int64)
        ok = starts < nsamples
        nframes = int(np.count_nonzero(ok)) if not ok.all() else nframes
        s["samples"].append(_read(members[ch]))
        s["time"].append(members[ch + "_frame_time"][:nframes].astype(np.int64))
        s["start"].append(starts[:nframes])
        s["seq"].append(seq_ds[:nframes].astype(np.uint64) if seq_ds is not None
                        else np.zeros(nframes, np.uint64))


def _coord(dim, values, attrs):
    if _is_time(attrs):
        attrs = {k: v for k, v in attrs.items() if k not in ("units", "calendar")}
        values = values.astype(np.int64).view("datetime64[ns]")
    return xr.Variable((dim,), values, attrs)


def _row_key(arr, i):
    row = arr[i]
    if isinstance(row, np.ndarray):
        return row.tobytes() if row.dtype != object else tuple(row.tolist())
    if isinstance(row, np.generic):
        return row.tobytes()
    return row


def _sorted_unique_rows(t, data, t_lo, t_hi):
    """Row numbers in time order (stable), in [t_lo, t_hi) when given, each
    row that equals an earlier row of the same time in every variable left
    out."""
    rows = np.arange(len(t))
    if t_lo is not None:
        rows = rows[t[rows] >= t_lo]
    if t_hi is not None:
        rows = rows[t[rows] < t_hi]
    rows = rows[np.argsort(t[rows], kind="stable")]
    ts = t[rows]
    if len(ts) < 2:
        return rows
    same = np.flatnonzero(ts[1:] == ts[:-1])
    if not len(same):
        return rows
    drop = np.zeros(len(rows), bool)
    arrays = list(data.values())
    a = 0
    for pos in same:
        if pos + 1 <= a:
            continue
        a = pos
        b = pos + 1
        while b < len(ts) and ts[b] == ts[a]:
            b += 1
        seen = set()
        for k in range(a, b):
            key = tuple(_row_key(arr, rows[k]) for arr in arrays)
            if key in seen:
                drop[k] = True
            else:
                seen.add(key)
        a = b
    return rows[~drop]


def _stream_vars(ch, s, t_lo, t_hi, out_vars, coords):
    """One stream channel: frames of all files sorted by (time, seq), exact
    duplicate frames dropped, samples in that order with their times."""
    samples_parts, times, seqs = [], [], []
    for samples, ft, fs, fq in zip(s["samples"], s["time"], s["start"], s["seq"]):
        ends = np.append(fs[1:], len(samples)) if len(fs) else fs
        for k in range(len(fs)):
            samples_parts.append(samples[fs[k]:ends[k]])
        times.append(ft)
        seqs.append(fq)
    ftime = np.concatenate(times) if times else np.zeros(0, np.int64)
    fseq = np.concatenate(seqs) if seqs else np.zeros(0, np.uint64)
    order = np.lexsort((fseq, ftime)) if len(ftime) else np.zeros(0, np.int64)
    kept, seen, last_time = [], set(), None
    for k in order:
        if ftime[k] != last_time:
            seen, last_time = set(), ftime[k]
        key = (int(fseq[k]), samples_parts[k].tobytes())
        if key in seen:
            continue
        seen.add(key)
        kept.append(k)
    lengths = np.array([len(samples_parts[k]) for k in kept], dtype=np.int64)
    data = (np.concatenate([samples_parts[k] for k in kept]) if kept
            else np.zeros(0, s["dtype"]))
    # where each sample came from, over the files' samples read in order
    # (for the event table, _event_spans)
    file_first = np.cumsum([0] + [len(x) for x in s["samples"]])
    origin_parts = []
    for fi, (samples, fs) in enumerate(zip(s["samples"], s["start"])):
        ends = np.append(fs[1:], len(samples)) if len(fs) else fs
        for k in range(len(fs)):
            origin_parts.append(np.arange(file_first[fi] + fs[k], file_first[fi] + ends[k]))
    origin = (np.concatenate([origin_parts[k] for k in kept]) if kept
              else np.zeros(0, np.int64))
    ftime, fseq = ftime[kept], fseq[kept]
    first = np.concatenate(([0], np.cumsum(lengths)[:-1])) if len(kept) else lengths
    dt = s["attrs"].get("dt")
    if dt is None:
        raise ValueError(f"stream channel {ch} has no dt attribute: no sample times")
    offset = np.arange(len(data), dtype=np.int64) - np.repeat(first, lengths)
    stime = np.repeat(ftime, lengths) + np.rint(offset * float(dt) * 1e9).astype(np.int64)
    keep = np.ones(len(data), bool)
    if t_lo is not None:
        keep &= stime >= t_lo
    if t_hi is not None:
        keep &= stime < t_hi
    frame_of = np.repeat(np.arange(len(kept)), lengths)
    if not keep.all():
        data, stime, frame_of = data[keep], stime[keep], frame_of[keep]
        origin = origin[keep]
        lengths = np.bincount(frame_of, minlength=len(kept))
        has = lengths > 0
        first_kept = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        ftime = stime[first_kept[has]] if len(stime) else ftime[:0]
        fseq, lengths = fseq[has], lengths[has]
    first = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.uint64)
    sdim, fdim = f"{ch}_sample_time", f"{ch}_frame_time"
    coords[sdim] = _coord(sdim, stime, {"units": TIME_UNITS, "standard_name": "time"})
    coords[fdim] = _coord(fdim, ftime, s["frame_attrs"])
    out_vars[ch] = xr.Variable((sdim,), data, s["attrs"])
    out_vars[f"{ch}_frame_start"] = xr.Variable((fdim,), first[:len(ftime)],
                                                {"long_name": "index of the frame's first "
                                                 "sample on " + sdim})
    out_vars[f"{ch}_frame_seq"] = xr.Variable((fdim,), fseq, {})
    return origin


def _event_spans(ch, origin, out_vars):
    """The event table's X_event_start/X_event_count (over the files'
    samples, _collect) as indexes of the Dataset's X, whose samples came
    from ORIGIN: the kept samples of each span, from the first of them."""
    if f"{ch}_event_start" not in out_vars or f"{ch}_event_count" not in out_vars:
        return
    start_var, count_var = out_vars[f"{ch}_event_start"], out_vars[f"{ch}_event_count"]
    start = start_var.values.astype(np.int64)
    count = count_var.values.astype(np.int64)
    size = int(max(origin.max() + 1 if len(origin) else 0,
                   (start + count).max() if len(start) else 0))
    position = np.full(size + 1, -1, np.int64)
    position[origin] = np.arange(len(origin))
    kept = np.concatenate(([0], np.cumsum(position >= 0)))
    new_count = kept[start + count] - kept[start]
    new_start = np.zeros(len(start), np.int64)
    for i in np.flatnonzero(new_count):
        inside = position[start[i]:start[i] + count[i]]
        new_start[i] = inside[inside >= 0][0]
    out_vars[f"{ch}_event_start"] = xr.Variable(start_var.dims, new_start.astype(np.uint64),
                                                start_var.attrs)
    out_vars[f"{ch}_event_count"] = xr.Variable(count_var.dims, new_count.astype(np.uint64),
                                                count_var.attrs)
