"""Times as int64 nanoseconds since 1970-01-01T00:00:00Z, the unit of the
wire protocol and of every time dataset h5rec writes."""
import datetime

import numpy as np

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def to_ns(value):
    """int (already ns), numpy.datetime64, datetime.datetime (naive = UTC),
    pandas.Timestamp or an ISO 8601 string -> int ns since the epoch."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"not a time: {value!r}")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if hasattr(value, "value") and hasattr(value, "tz_localize"):  # pandas.Timestamp
        if value.tzinfo is not None:
            value = value.tz_convert(None)
        return int(value.value)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        delta = value - _EPOCH
        return (delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
    if isinstance(value, str):
        text = value[:-1] if value.endswith("Z") else value
        value = np.datetime64(text, "ns")
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            raise ValueError("not a time: NaT")
        return int(value.astype("datetime64[ns]").astype(np.int64))
    raise TypeError(f"not a time: {value!r}")
