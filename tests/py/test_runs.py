"""Runs over the control socket (`h5rec run start NAME --attr K=V`, `h5rec
run stop`): a run rolls to a new file named with {run}, every file of it
carries the run's root attributes, the stop writes run_end into its last
file, status shows it, and a recorder restarted during a run goes on with
it and says so, in its log and in the next file."""
import os
import socket

import h5py
import pytest

from recorder_fixture import SEC, T0, WEATHER_STREAM, run_client
from recorder_fixture import recorder  # noqa: F401 (pytest fixture)
from reliability_helpers import wait_for


def start_recorder(recorder):
    return recorder(WEATHER_STREAM, listen=[{"protocol": "line", "transport": "tcp"}],
                    output={"flush": "100ms", "file": '"{name}-{run}-{seq}.h5"'})


def send(rec, station, value, t):
    with socket.create_connection(rec.bound[0][1], timeout=5) as s:
        s.sendall(f"weather,station={station} temperature={value} {t}\n".encode())
    wait_for(lambda: rec.status()["counters"]["lines"] > 0, what="a line")
    rec.control("flush")


def h5rec_run(rec, *args, check=True):
    return run_client(["run", *args, "--socket", rec.control_socket], check=check)


def root_attrs(path):
    with h5py.File(path, "r", swmr=True) as f:  # a killed recorder's file too
        return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}


def test_run_start_stop_files_and_attributes(recorder):
    rec = start_recorder(recorder)
    send(rec, "a", 1, T0)
    out = h5rec_run(rec, "start", "Nov_Run3", "--attr", "beam_energy=6.5", "--attr",
                    "operator=J. Smith", "--attr", "shots=12").stdout
    assert out == "run Nov_Run3 started\n"
    status = rec.status()
    assert status["run"]["name"] == "Nov_Run3" and status["run"]["start"].startswith("20")
    assert "run: Nov_Run3 since " in rec.control("status").stdout
    send(rec, "a", 2, T0 + SEC)
    rec.control("roll")                  # a run spans several files
    send(rec, "a", 3, T0 + 2 * SEC)
    again = h5rec_run(rec, "start", "Other", check=False)
    assert again.returncode == 1 and "run Nov_Run3 is going on" in again.stderr
    out = h5rec_run(rec, "stop").stdout
    assert out.startswith("run Nov_Run3 stopped: run_end written in ") and "-Nov_Run3-" in out
    assert rec.status()["run"]["name"] == ""
    send(rec, "a", 4, T0 + 3 * SEC)
    nothing = h5rec_run(rec, "stop", check=False)
    assert nothing.returncode == 1 and "no run is going on" in nothing.stderr
    rec.stop()

    names = [os.path.basename(p) for p in rec.files()]
    assert names == ["e2e--0000.h5", "e2e--0003.h5", "e2e-Nov_Run3-0001.h5",
                     "e2e-Nov_Run3-0002.h5"], names
    before, after, first, last = (root_attrs(p) for p in rec.files())
    for plain in (before, after):
        assert not any(k.startswith("run") for k in plain), plain
    for a in (first, last):
        assert a["run"] == "Nov_Run3" and a["beam_energy"] == 6.5 and a["shots"] == 12
        assert a["operator"] == "J. Smith" and a["run_start"] > 0
        assert isinstance(a["beam_energy"], float) and a["shots"].dtype.kind == "i"
    assert first["run_start"] == last["run_start"]
    assert first["run_end"] == 0 and last["run_end"] > last["run_start"]
    assert first["file_sequence"] < last["file_sequence"]


@pytest.mark.parametrize("args,why", [
    (["start", "bad/name"], "a run name is 1-64 of"),
    (["start", "R", "--attr", "run_end=1"], "run_end: the recorder writes that attribute"),
    (["start", "R", "--attr", "1x=1"], "expected KEY=VALUE"),
    (["start", "R", "--attr", "k=1", "--attr", "k=2"], "k given twice"),
])
def test_run_requests_refused_with_the_reason(recorder, args, why):
    rec = start_recorder(recorder)
    res = h5rec_run(rec, *args, check=False)
    assert res.returncode == 1 and why in res.stderr, res.stderr
    assert rec.status()["run"]["name"] == ""
    rec.stop()


def test_restart_during_a_run_goes_on_with_it(recorder):
    rec = start_recorder(recorder)
    h5rec_run(rec, "start", "R7", "--attr", "gain=2")
    send(rec, "a", 1, T0)
    rec.proc.kill()
    rec.proc.wait()
    rec.start()
    assert "the recorder restarted during run R7" in rec.log()
    assert rec.status()["run"]["name"] == "R7"
    send(rec, "a", 2, T0 + SEC)
    h5rec_run(rec, "stop")
    rec.stop()
    rec.start()                          # stopped: nothing to resume
    assert "restarted during run" not in rec.log()
    assert rec.status()["run"]["name"] == ""
    rec.stop()
    files = rec.files()
    assert [os.path.basename(p) for p in files] == ["e2e-R7-0000.h5", "e2e-R7-0001.h5"]
    killed, resumed = (root_attrs(p) for p in files)
    assert resumed["run_restarted"] > killed["run_start"] == resumed["run_start"]
    assert "run_restarted" not in killed and resumed["gain"] == 2
    assert resumed["run_end"] > 0
