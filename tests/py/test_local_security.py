"""Local security of the control socket (issue 16, sections 3 and 5).

Squatting: another local user who creates /tmp/h5rec-UID (or any directory
the socket is looked for in) before the recorder must get nothing from it.
The recorder refuses to bind there and says why and what to do; the client
refuses to talk to a socket there, naming the path, the owner and what is
wrong, and exits non-zero, so it never prints the squatter's answers. The
places that are normal stay usable: a service user's directory root made
(/run/h5rec under systemd), for root and for a member of the group.

Exhaustion: silent control connections cannot pin descriptors. At most 16
are open (a new one closes the oldest silent one, so `h5rec status` still
answers), a connection without a whole request is closed after 10 s, and a
flush waiting for a stalled writer is neither timed out nor evicted.

The second local user is uid 65534 (nobody) and the squatter uid 65533
(root creates its directories and runs its fake server): the tests run as
root. Of the fixed per-user places only /tmp/h5rec-65534 is ever touched
(never /tmp/h5rec-0, which other tests use), under a lock on this file so
that two builds running this file at once do not share it.
"""
import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from recorder_fixture import (BUILD, H5REC, H5RECD, WEATHER_STREAM, free_port,  # noqa: E402
                              preload_env, run_client, start_client)
from recorder_fixture import recorder  # noqa: E402,F401 (pytest fixture)
from reliability_helpers import wait_for  # noqa: E402

# the LD_PRELOAD shims of this build, unless the caller points elsewhere
os.environ.setdefault("H5REC_TOOLS_DIR", os.path.join(BUILD, "tests", "tools"))

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="acting as a second local user needs root")

USER = 65534       # the victim: nobody
SQUATTER = 65533   # another local user
MAX_CONNECTIONS = 16   # CONTROL_MAX_CONNECTIONS (src/daemon/control.h)
IDLE_TIMEOUT_S = 10    # CONTROL_IDLE_TIMEOUT_MS
SPOOFED = "SPOOFED-BY-THE-SQUATTER"

STREAMS = WEATHER_STREAM

# The squatter's recorder: answers every request with lies.
FAKE_SERVER = r"""
import os, socket, sys
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
os.chmod(path, 0o666)
s.listen(64)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    request = c.recv(4096).decode(errors="replace").strip()
    print("request", request, flush=True)
    if request.startswith("status"):
        c.sendall(b"h5recd 0.1.0, schema SPOOFED-BY-THE-SQUATTER\nall is well\n")
    else:
        c.sendall(b"flushed\n" if request == "flush" else b"rolled\n")
    c.close()
"""


# ---- places, users and a fake recorder -----------------------------------------------


@pytest.fixture
def place_lock():
    """Serialises the tests that use /tmp/h5rec-65534 across processes."""
    with open(__file__) as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def remove_place(path):
    """Remove a test uid's /tmp/h5rec-UID, whatever was left there."""
    assert path in (f"/tmp/h5rec-{USER}", f"/tmp/h5rec-{SQUATTER}"), path
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)


@contextlib.contextmanager
def user_place(uid, owner, mode):
    """/tmp/h5rec-UID made by root for OWNER with MODE: a squat if OWNER is
    not UID. Removed on the way out."""
    path = f"/tmp/h5rec-{uid}"
    remove_place(path)  # left by an interrupted run of this file
    try:
        os.mkdir(path)
        os.chown(path, owner, owner)
        os.chmod(path, mode)
        yield path
    finally:
        remove_place(path)


@pytest.fixture
def scratch():
    """Directories under /tmp that other users may reach (tmp_path may not
    be): made by root with mode 0755, removed at the end."""
    made = []

    def make(owner=0, mode=0o755):
        path = tempfile.mkdtemp(prefix="h5sec-", dir="/tmp")
        made.append(path)
        os.chown(path, owner, owner)
        os.chmod(path, mode)
        return path

    yield make
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


def as_user(uid, groups=()):
    """subprocess keyword arguments to run as UID (its own gid, GROUPS)."""
    return {"user": uid, "group": uid, "extra_groups": list(groups)}


def env_without_runtime_dir(**extra):
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    env.update(extra)
    return env


class FakeRecorder:
    """A Unix socket at PATH answering as a recorder would, run as UID."""

    def __init__(self, path, uid, out_dir):
        self.path = path
        self.log_path = os.path.join(out_dir, f"fake-{os.getpid()}-{uid}.log")
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(["/usr/bin/python3", "-c", FAKE_SERVER, path],
                                         stdout=log, stderr=subprocess.STDOUT,
                                         **as_user(uid))
        wait_for(lambda: "ready" in self.log() or self.proc.poll() is not None, timeout=10,
                 what="the fake recorder")
        assert self.proc.poll() is None, f"the fake recorder did not start:\n{self.log()}"

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def requests(self):
        """What clients asked (a connection that asked nothing is no request)."""
        return [line.split(" ", 1)[1] for line in self.log().splitlines()
                if line.startswith("request ") and line.strip() != "request"]

    def close(self):
        self.proc.kill()
        self.proc.wait()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


@contextlib.contextmanager
def fake_recorder(path, uid, out_dir):
    fake = FakeRecorder(path, uid, out_dir)
    try:
        yield fake
    finally:
        fake.close()


def schema(dir_, name, control=None):
    """A readable schema in DIR_ (one line listener), its path."""
    text = (f"name: {name}\n"
            f'output: {{ directory: "{dir_}/out", file: "{name}-{{seq}}.h5" }}\n'
            + (f'control: {{ socket: "{control}" }}\n' if control else "")
            + f'listen:\n  - {{ protocol: line, transport: tcp, address: "127.0.0.1:'
              f'{free_port()}" }}\n'
            + "streams:" + STREAMS.replace("\n", "\n  ") + "\n")
    path = os.path.join(dir_, f"{name}.yaml")
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)
    return path


def unique_name():
    return f"sec{os.getpid()}x{time.monotonic_ns() % 1000000}"


def client(args, env=None, **kw):
    return subprocess.run([H5REC, *map(str, args)], capture_output=True, text=True,
                          timeout=60, env=env or env_without_runtime_dir(), **kw)


class Daemon:
    """h5recd on SCHEMA_PATH, maybe as another user, logging to a file."""

    def __init__(self, schema_path, log_dir, env=None, **kw):
        self.log_path = os.path.join(log_dir, f"h5recd-{os.getpid()}.log")
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen([H5RECD, "-c", schema_path], stdout=log,
                                         stderr=subprocess.STDOUT,
                                         env=env or env_without_runtime_dir(), **kw)

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_recording(self):
        wait_for(lambda: "notice: recording" in self.log() or self.proc.poll() is not None,
                 timeout=30, what="h5recd to start")
        assert self.proc.poll() is None, f"h5recd did not start:\n{self.log()}"
        return self

    def wait_refusal(self):
        """The exit status of a recorder that must not start."""
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"h5recd started where it must not:\n{self.log()}")
        return code

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.proc.wait(timeout=60)


def assert_refused(res, path, owner=None, what=None):
    """The client said no, named PATH (and OWNER, WHAT), printed no answer."""
    text = res.stdout + res.stderr
    assert res.returncode != 0, f"the client believed {path}:\n{text}"
    assert SPOOFED not in text and "flushed" not in res.stdout and "rolled" not in res.stdout
    assert path in res.stderr, res.stderr
    if owner is not None:
        assert f"uid {owner}" in res.stderr, res.stderr
    if what is not None:
        assert what in res.stderr, res.stderr


# ---- squatting: the recorder ----------------------------------------------------------


def test_recorder_refuses_a_squatted_tmp_dir_and_says_why(place_lock, scratch):
    """uid 65534 starts h5recd with the default socket place; uid 65533
    made /tmp/h5rec-65534 first. It must not start, and must say which
    directory, whose it is, and what to do."""
    work = scratch(owner=USER)
    path = schema(work, unique_name())
    with user_place(USER, SQUATTER, 0o755) as squatted:
        daemon = Daemon(path, work, **as_user(USER))
        assert daemon.wait_refusal() != 0
        log = daemon.log()
        assert squatted in log and f"uid {SQUATTER}" in log, log
        assert "control.socket" in log, log  # what to do instead
        assert os.listdir(squatted) == []


@pytest.mark.parametrize("mode", [0o755, 0o777, 0o1777],
                         ids=["owned-by-65534", "0777", "1777"])
def test_recorder_refuses_a_directory_others_own_or_can_write(scratch, mode):
    """control.socket in a directory another user owns, or anyone may write
    (sticky or not: /tmp itself is no place for it), is refused by a
    recorder running as root: whoever can create names there could answer
    in its place."""
    owner = USER if mode == 0o755 else 0
    place = scratch(owner=owner, mode=mode)
    work = scratch()
    daemon = Daemon(schema(work, unique_name(), control=f"{place}/c.sock"), work)
    assert daemon.wait_refusal() != 0
    log = daemon.log()
    assert f"{place}" in log and "refused" in log, log
    if mode == 0o755:
        assert f"belongs to uid {USER}" in log, log
    else:
        assert "can be written by other users" in log, log
    assert not os.path.exists(f"{place}/c.sock")


# ---- squatting: the client -------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o755, 0o777], ids=["owned-by-65533", "0777"])
def test_client_refuses_a_squatted_tmp_dir(place_lock, scratch, mode):
    """uid 65534 asks its recorder (default place /tmp/h5rec-65534) for
    status, flush and roll; uid 65533 squats that directory with a fake
    recorder. The client must refuse, name the directory and its owner, and
    send the squatter nothing."""
    work = scratch()
    name = unique_name()
    path = schema(work, name)
    with user_place(USER, SQUATTER, mode) as squatted, \
            fake_recorder(f"{squatted}/{name}.sock", SQUATTER, work) as fake:
        for args in (["status", "-c", path], ["status", "--json", "-c", path],
                     ["flush", "-c", path], ["roll", "-c", path],
                     ["status", "--socket", f"{squatted}/{name}.sock"]):
            res = client(args, **as_user(USER))
            assert_refused(res, squatted, SQUATTER if mode == 0o755 else None,
                           "can be written by other users" if mode == 0o777 else None)
        assert fake.requests() == []


@pytest.mark.parametrize("slash", ["", "/"], ids=["plain", "trailing-slash"])
def test_root_client_refuses_someone_elses_runtime_dir(scratch, slash):
    """Root with XDG_RUNTIME_DIR pointing at a directory uid 65534 owns:
    a per-user place admits no other owner, even for root (who may talk
    to a user's directory it names, not to one it was handed)."""
    runtime = scratch(owner=USER, mode=0o700)
    work = scratch()
    name = unique_name()
    path = schema(work, name)
    with fake_recorder(f"{runtime}/h5rec-{name}.sock", USER, work) as fake:
        env = env_without_runtime_dir(XDG_RUNTIME_DIR=runtime + slash)
        for args in (["status", "-c", path], ["flush", "-c", path]):
            assert_refused(client(args, env=env), runtime, USER)
        assert fake.requests() == []


def test_client_refuses_a_directory_others_can_write(scratch):
    """A socket in a directory anyone may write (here sticky, like /tmp)
    could be anyone's: refused, even by root naming it."""
    place = scratch(mode=0o1777)
    work = scratch()
    with fake_recorder(f"{place}/c.sock", USER, work) as fake:
        for who in ({}, as_user(SQUATTER)):
            res = client(["status", "--socket", f"{place}/c.sock"], **who)
            assert_refused(res, place, what="can be written by other users")
        assert fake.requests() == []


def test_client_refuses_a_socket_another_user_owns(scratch):
    """The directory is root's and safe, but the socket belongs to uid
    65534, who is neither the user, root nor the directory's owner."""
    place = scratch(mode=0o755)
    work = scratch()
    with fake_recorder(f"{place}/c.sock", 0, work) as fake:
        os.chown(f"{place}/c.sock", USER, USER)
        res = client(["status", "--socket", f"{place}/c.sock"])
        assert_refused(res, f"{place}/c.sock", USER)
        assert fake.requests() == []


def test_client_refuses_a_symlinked_socket_directory(place_lock, scratch):
    """/tmp/h5rec-65534 as a symbolic link into a directory the squatter
    owns (it could point anywhere, and be swapped at any time)."""
    target = scratch(owner=SQUATTER, mode=0o755)
    work = scratch()
    name = unique_name()
    path = schema(work, name)
    link = f"/tmp/h5rec-{USER}"
    remove_place(link)
    try:
        os.symlink(target, link)
        os.lchown(link, SQUATTER, SQUATTER)
        with fake_recorder(f"{target}/{name}.sock", SQUATTER, work) as fake:
            res = client(["status", "-c", path], **as_user(USER))
            assert_refused(res, link, SQUATTER, "symbolic link")
            assert fake.requests() == []
    finally:
        remove_place(link)


def test_a_directory_others_could_swap_is_refused(scratch):
    """A private directory of root's, but inside one anyone may write and
    that is not sticky: anyone could rename it away and put their own in
    its place. Refused by the recorder and by the client."""
    outer = scratch(mode=0o777)
    inner = os.path.join(outer, "inner")
    os.mkdir(inner, 0o700)
    work = scratch()
    daemon = Daemon(schema(work, unique_name(), control=f"{inner}/c.sock"), work)
    assert daemon.wait_refusal() != 0
    assert f"the directory above {inner} can be written by other users" in daemon.log()
    with fake_recorder(f"{inner}/c.sock", 0, work) as fake:
        res = client(["status", "--socket", f"{inner}/c.sock"])
        assert_refused(res, inner, what="the directory above")
        assert fake.requests() == []


def test_client_refuses_a_listener_that_is_not_the_sockets_owner(scratch):
    """Everything on disk is root's, but the process answering runs as uid
    65534 (it bound the socket before root took the file and directory
    over): the client asks the kernel who listens (SO_PEERCRED)."""
    place = scratch(owner=USER, mode=0o755)
    work = scratch()
    with fake_recorder(f"{place}/c.sock", USER, work) as fake:
        os.chown(f"{place}/c.sock", 0, 0)
        os.chown(place, 0, 0)
        res = client(["status", "--socket", f"{place}/c.sock"])
        assert_refused(res, f"{place}/c.sock", USER, "served by uid")
        assert fake.requests() == []


# ---- the places that are normal keep working --------------------------------------------


def test_service_users_directory_is_usable_by_root_and_the_group(scratch):
    """As under systemd: root made the directory (its parent is root's) and
    gave it to the service user (here 65534, mode 0750), whose recorder
    binds there. Root and a member of the service user's group (uid 65533
    with group 65534) may talk to it."""
    base = scratch(mode=0o755)
    run = os.path.join(base, "run")
    os.mkdir(run)
    os.chown(run, USER, USER)
    os.chmod(run, 0o750)
    work = scratch(owner=USER)
    control = f"{run}/c.sock"
    path = schema(work, unique_name(), control=control)
    daemon = Daemon(path, work, **as_user(USER)).wait_recording()
    try:
        wait_for(lambda: os.path.exists(control), what="the control socket")
        root = client(["status", "--socket", control])
        assert root.returncode == 0 and "schema" in root.stdout, root.stderr
        member = client(["status", "-c", path], **as_user(SQUATTER, groups=[USER]))
        assert member.returncode == 0 and "schema" in member.stdout, member.stderr
        flushed = client(["flush", "-c", path], **as_user(SQUATTER, groups=[USER]))
        assert flushed.stdout == "flushed\n", flushed.stderr
    finally:
        assert daemon.stop() == 0, daemon.log()


def test_users_own_tmp_dir_is_created_and_used(place_lock, scratch):
    """Without squatters uid 65534's recorder makes /tmp/h5rec-65534 (0700)
    and its client finds it from the schema."""
    work = scratch(owner=USER)
    name = unique_name()
    path = schema(work, name)
    place = f"/tmp/h5rec-{USER}"
    remove_place(place)
    try:
        daemon = Daemon(path, work, **as_user(USER)).wait_recording()
        try:
            st = os.lstat(place)
            assert st.st_uid == USER and st.st_mode & 0o777 == 0o700
            res = client(["status", "-c", path], **as_user(USER))
            assert res.returncode == 0 and f"schema {name}" in res.stdout, res.stderr
        finally:
            assert daemon.stop() == 0, daemon.log()
    finally:
        remove_place(place)


# ---- exhaustion --------------------------------------------------------------------------


def eof(sock):
    """Has the recorder closed SOCK? (Without waiting.)"""
    try:
        return sock.recv(1, socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def open_sockets(pid):
    fds = f"/proc/{pid}/fd"
    count = 0
    for fd in os.listdir(fds):
        with contextlib.suppress(OSError):
            count += os.readlink(os.path.join(fds, fd)).startswith("socket:")
    return count


def connect_control(rec, timeout=10):
    """A connection to REC's control socket, once its backlog has room."""
    deadline = time.monotonic() + timeout
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setblocking(False)
    while True:
        try:
            s.connect(rec.control_socket)
            return s
        except BlockingIOError:  # the backlog is full: the recorder has not accepted yet
            if time.monotonic() > deadline:
                s.close()
                raise
            time.sleep(0.005)


def test_silent_connections_cannot_pin_the_control_socket(recorder):
    """100 connections that say nothing: at most 16 stay open in the
    recorder, `h5rec status` (a new connection) still answers, and the
    silent ones left are closed after the idle timeout."""
    rec = recorder(STREAMS, listen=[{"protocol": "line", "transport": "tcp"}])
    before = open_sockets(rec.pid)
    silent = [connect_control(rec) for _ in range(100)]
    try:
        status = run_client(["status", "--socket", rec.control_socket], timeout=30)
        assert "schema" in status.stdout
        # the status came after all 100: each was accepted, and closed to
        # make room where needed, before it was answered
        still_open = [s for s in silent if not eof(s)]
        assert len(still_open) <= MAX_CONNECTIONS, \
            f"{len(still_open)} silent control connections kept open"
        assert open_sockets(rec.pid) <= before + MAX_CONNECTIONS
        rec.wait_log(r"control socket: .*closed one that sent no request")
        wait_for(lambda: all(eof(s) for s in still_open), timeout=IDLE_TIMEOUT_S + 20,
                 what="the silent connections to time out")
        wait_for(lambda: open_sockets(rec.pid) <= before, timeout=10,
                 what="the recorder to hold no more control connections")
    finally:
        for s in silent:
            s.close()
    rec.stop()


def test_incomplete_requests_time_out(recorder):
    """A connection that sends nothing, and one that never finishes its
    line, are closed after the idle timeout."""
    rec = recorder(STREAMS, listen=[{"protocol": "line", "transport": "tcp"}])
    quiet, slow = connect_control(rec), connect_control(rec)
    try:
        slow.sendall(b"sta")
        wait_for(lambda: eof(quiet) and eof(slow), timeout=IDLE_TIMEOUT_S + 20,
                 what="incomplete requests to time out")
        rec.wait_log(r"control socket: closed a connection after .*no complete request")
        assert "schema" in run_client(["status", "--socket", rec.control_socket]).stdout
    finally:
        quiet.close()
        slow.close()
    rec.stop()


STALL_MS = 15000  # longer than the idle timeout and its tick


def test_requests_waiting_for_the_writer_are_not_idle(recorder):
    """The writer stalls 15 s in an fsync (LD_PRELOAD shim): 16 flushes
    wait for it, longer than the idle timeout, and are all answered
    "flushed"; meanwhile a 17th connection is refused, since no
    connection is silent and none may be dropped for it."""
    env = preload_env("fsync_fault", H5REC_FSYNC_AT=1, H5REC_FSYNC_SLEEP_MS=STALL_MS)
    rec = recorder(STREAMS, listen=[{"protocol": "line", "transport": "tcp"}], env=env)
    with socket.create_connection(rec.bound[0][1], timeout=10) as s:
        s.sendall(b"weather,station=s1 temperature=21.5 1767225600000000000\n")
    rec.wait_log(r"fsync_fault: fsync call 1 stalls", timeout=30)
    started = time.monotonic()
    flushes = [start_client(["flush", "--socket", rec.control_socket])
               for _ in range(MAX_CONNECTIONS)]
    try:
        wait_for(lambda: rec.log().count("control socket: flush requested") == MAX_CONNECTIONS,
                 timeout=30, what="16 flushes queued")
        refused = run_client(["status", "--socket", rec.control_socket], check=False,
                             timeout=30)
        assert refused.returncode != 0 and "schema" not in refused.stdout, refused.stdout
        rec.wait_log(r"control socket: refused a connection: 16 requests in progress")
        answers = [p.communicate(timeout=120) for p in flushes]
    finally:
        for p in flushes:
            if p.poll() is None:
                p.kill()
                p.communicate()
    waited = time.monotonic() - started
    assert [p.returncode for p in flushes] == [0] * MAX_CONNECTIONS, answers
    assert all(out == "flushed\n" for out, _ in answers), answers
    assert waited > IDLE_TIMEOUT_S + 1, \
        f"the stall ended after {waited:.1f} s, before the idle timeout: nothing was shown"
    assert "schema" in run_client(["status", "--socket", rec.control_socket]).stdout
    rec.stop()
