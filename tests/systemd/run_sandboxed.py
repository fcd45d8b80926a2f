#!/usr/bin/python3
"""run_sandboxed.py - record under the unit's system call filter, without systemd.

    run_sandboxed.py UNIT H5RECD H5REC SCHEMA_DIR

systemd-analyze can only read the unit; whether h5recd actually lives with
the restrictions in it shows only when it runs under them. There is no
systemd PID 1 here (nor in CI), so this script applies the parts of UNIT
that a wrong guess about the daemon would break, with libseccomp, and runs
the real daemon under them:

- SystemCallFilter= (an allow list, plus @default as systemd adds it, minus
  the ~ lists), SystemCallArchitectures=native, NoNewPrivileges=;
- MemoryDenyWriteExecute= (no writable+executable mappings, no mprotect to
  executable), RestrictAddressFamilies= (other families get EAFNOSUPPORT,
  as under systemd);
- UMask=, and an unprivileged user (nobody) when started as root, as the
  unit's User= and empty CapabilityBoundingSet= make it;
- NOTIFY_SOCKET and WATCHDOG_USEC, to see READY=1, WATCHDOG=1, STOPPING=1.

Where systemd answers a filtered system call with EPERM
(SystemCallErrorNumber=), this filter kills the process: a call the unit
forbids must show up as a failure here, not as a quietly degraded recorder.

For the weather and accelerator schemas it records over TCP, UDP and
frames, asks `h5rec status`, `flush` and `roll`, sends SIGHUP, stops with
SIGTERM, and checks the exit status, the notifications, the files (readable
by `h5rec info`, not world-accessible) and the control socket (0660).
Exit status: 0 pass, 1 fail, 77 skip (no libseccomp or systemd-analyze).
"""
import ctypes
import ctypes.util
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

SCMP_ACT_KILL_PROCESS = 0x80000000
SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_CMP_EQ = 4
SCMP_CMP_GE = 5
SCMP_CMP_MASKED_EQ = 7
PROT_WRITE, PROT_EXEC = 0x2, 0x4
SHM_EXEC = 0o100000
AF_MAX = 46  # Linux 6.x; families at or above it are refused as well


def scmp_act_errno(errno_value):
    return 0x00050000 | (errno_value & 0xFFFF)


class ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


def skip(reason):
    print(f"SKIP: {reason}")
    sys.exit(77)


def unit_settings(path):
    """The [Service] settings of a unit file, as (key, value) in order."""
    settings = []
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, value = line.split("=", 1)
            settings.append((key.strip(), value.strip()))
    return settings


def syscall_groups():
    out = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager"],
                         check=True, capture_output=True, text=True).stdout
    groups, current = {}, None
    for line in out.splitlines():
        if line.startswith("@"):
            current = line.strip()
            groups[current] = []
        elif current and line.strip() and not line.strip().startswith("#"):
            groups[current].append(line.strip())
    return groups


def expand(names, groups):
    result = set()
    for name in names:
        result |= expand(groups[name], groups) if name.startswith("@") else {name}
    return result


def allowed_syscalls(settings, groups):
    """SystemCallFilter= as systemd combines it: the first list allows (and
    brings @default along), later ~lists take away."""
    allowed = None
    for key, value in settings:
        if key != "SystemCallFilter" or not value:
            continue
        deny = value.startswith("~")
        names = set(value.lstrip("~").split())
        if allowed is None:
            if deny:
                raise SystemExit("FAIL: the unit's SystemCallFilter= is a deny list; "
                                 "this check expects an allow list")
            allowed = expand(names | {"@default"}, groups)
        elif deny:
            allowed -= expand(names, groups)
        else:
            allowed |= expand(names, groups)
    if allowed is None:
        raise SystemExit("FAIL: the unit has no SystemCallFilter=")
    return allowed


def build_filter(libseccomp, settings, allowed):
    families = {"AF_UNIX": 1, "AF_INET": 2, "AF_INET6": 10}
    restrict = dict(settings).get("RestrictAddressFamilies", "").split()
    allowed_families = {families[f] for f in restrict} if restrict else None
    mdwe = dict(settings).get("MemoryDenyWriteExecute") == "yes"

    ctx = libseccomp.seccomp_init(SCMP_ACT_KILL_PROCESS)
    if not ctx:
        raise SystemExit("FAIL: seccomp_init")

    def rule(action, name, *cmps):
        nr = libseccomp.seccomp_syscall_resolve_name(name.encode())
        if nr < 0:
            return  # not a system call of this architecture
        array = (ArgCmp * max(len(cmps), 1))(*[ArgCmp(*c) for c in cmps])
        rc = libseccomp.seccomp_rule_add_array(ctx, action, nr, len(cmps), array)
        if rc < 0:
            raise SystemExit(f"FAIL: seccomp rule for {name}: {os.strerror(-rc)}")

    conditional = set()
    if mdwe:
        conditional |= {"mmap", "mprotect", "pkey_mprotect", "shmat"}
        wx = PROT_WRITE | PROT_EXEC
        for ok in (0, PROT_WRITE, PROT_EXEC):
            if "mmap" in allowed:
                rule(SCMP_ACT_ALLOW, "mmap", (2, SCMP_CMP_MASKED_EQ, wx, ok))
        for name, arg in (("mprotect", 2), ("pkey_mprotect", 2)):
            if name in allowed:
                rule(SCMP_ACT_ALLOW, name, (arg, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0))
        if "shmat" in allowed:
            rule(SCMP_ACT_ALLOW, "shmat", (2, SCMP_CMP_MASKED_EQ, SHM_EXEC, 0))
    if allowed_families is not None and "socket" in allowed:
        conditional.add("socket")
        refuse = scmp_act_errno(97)  # EAFNOSUPPORT, as systemd answers
        for family in range(AF_MAX):
            action = SCMP_ACT_ALLOW if family in allowed_families else refuse
            rule(action, "socket", (0, SCMP_CMP_EQ, family, 0))
        rule(refuse, "socket", (0, SCMP_CMP_GE, AF_MAX, 0))
    for name in sorted(allowed - conditional):
        rule(SCMP_ACT_ALLOW, name)
    return ctx


class Notifications:
    """The manager's side of sd_notify: a datagram socket named NOTIFY_SOCKET,
    read all the time as systemd does (sd_notify blocks when it is full)."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        os.chmod(path, 0o666)
        self.sock.settimeout(0.1)
        self.messages = []
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while self.running:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            with self.lock:
                self.messages.extend(data.decode(errors="replace").splitlines())

    def close(self):
        self.running = False
        self.thread.join()
        self.sock.close()

    def wait_for(self, message, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count(message):
                return True
            time.sleep(0.05)
        return False

    def count(self, message):
        with self.lock:
            return sum(1 for m in self.messages if m == message)


def free_port():
    """A port that is free for both TCP and UDP on loopback just now."""
    while True:
        with socket.socket() as tcp, socket.socket(type=socket.SOCK_DGRAM) as udp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kw)


def exercise(setup, pid, schema, control, ports, client, fail):
    """What an operator and the senders do to a running recorder."""
    mode = stat.S_IMODE(os.stat(control).st_mode)
    if mode != 0o660:
        fail(f"control socket mode {mode:o}, not 660")
    more = "2000" if setup == "weather" else "5"
    if setup == "weather":
        client("simulate", "weather", "-c", schema, "-n", "20000", "-r", "0")
        client("simulate", "weather", "-t", f"udp:127.0.0.1:{ports['8089']}", "-n", "500",
               "-r", "0", "--no-ack")
    else:
        client("simulate", "accelerator", "-c", schema, "-n", "20", "-r", "0")
    client("status", "-c", schema)
    client("status", "-c", schema, "--json")
    if client("flush", "-c", schema).strip() != "flushed":
        fail("h5rec flush did not answer 'flushed'")
    if client("roll", "-c", schema).strip() != "rolled":
        fail("h5rec roll did not answer 'rolled'")
    client("simulate", setup, "-c", schema, "-n", more, "-r", "0")
    os.kill(pid, signal.SIGHUP)
    client("simulate", setup, "-c", schema, "-n", more, "-r", "0")
    time.sleep(1.2)  # at least one watchdog period after READY=1


def record(setup, args, libseccomp, ctx, umask, failures):
    work = tempfile.mkdtemp(prefix=f"h5rec-sandbox-{setup}-")
    user = None
    log_path = None
    try:
        if os.geteuid() == 0:
            user = pwd.getpwnam("nobody")
            os.chmod(work, 0o755)
            os.chown(work, user.pw_uid, user.pw_gid)
        text = open(os.path.join(args.schema_dir, f"{setup}.yaml"), encoding="utf-8").read()
        control = os.path.join(work, "control.sock")
        text = re.sub(r"^(name: .*)$", rf"\1\ncontrol: {{ socket: {control} }}", text,
                      count=1, flags=re.M)
        # Free ports instead of the examples' fixed ones: other tests may run
        # at the same time.
        ports = {}
        text = re.sub(r"127\.0\.0\.1:(\d+)",
                      lambda m: f"127.0.0.1:{ports.setdefault(m.group(1), free_port())}", text)
        schema = os.path.join(work, "schema.yaml")
        with open(schema, "w", encoding="utf-8") as out:
            out.write(text)
        notify = Notifications(os.path.join(work, "notify.sock"))
        log_path = os.path.join(work, "h5recd.log")
        log = open(log_path, "wb")
        env = {"PATH": "/usr/bin:/bin", "NOTIFY_SOCKET": os.path.join(work, "notify.sock"),
               "WATCHDOG_USEC": "1000000"}

        pid = os.fork()
        if pid == 0:  # the service's process: WorkingDirectory, UMask, User, filter
            try:
                os.dup2(log.fileno(), 1)
                os.dup2(log.fileno(), 2)
                os.chdir(work)
                os.umask(umask)
                if user:
                    os.setgroups([])
                    os.setresgid(user.pw_gid, user.pw_gid, user.pw_gid)
                    os.setresuid(user.pw_uid, user.pw_uid, user.pw_uid)
                rc = libseccomp.seccomp_load(ctx)
                if rc < 0:
                    os.write(2, f"seccomp_load: {os.strerror(-rc)}\n".encode())
                    os._exit(127)
                os.execve(args.h5recd, [args.h5recd, "-c", schema], env)
            except BaseException as e:  # noqa: B036 - nothing may escape a forked child
                os.write(2, f"cannot start {args.h5recd}: {e!r}\n".encode())
            finally:
                os._exit(127)

        def fail(message):
            failures.append(f"{setup}: {message}")
            print(f"FAIL: {setup}: {message}")

        def client(*cmd):
            try:
                result = run([args.h5rec, *cmd])
            except subprocess.TimeoutExpired:
                fail(f"h5rec {' '.join(cmd[:2])}: no answer within 60 s")
                return ""
            if result.returncode != 0:
                fail(f"h5rec {' '.join(cmd[:2])}: exit {result.returncode}: "
                     f"{(result.stderr or result.stdout).strip()[-300:]}")
            return result.stdout

        status = None
        try:
            if notify.wait_for("READY=1", 20):
                exercise(setup, pid, schema, control, ports, client, fail)
            else:
                fail("no READY=1 within 20 s")
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 60
            while status is None and time.monotonic() < deadline:
                done, wait_status = os.waitpid(pid, os.WNOHANG)
                if done:
                    status = wait_status
                time.sleep(0.05)
        finally:
            if status is None:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                fail("did not stop within 60 s of SIGTERM")
        if status is None:
            return
        log.close()
        time.sleep(0.2)  # the last datagrams
        notify.close()
        if os.WIFSIGNALED(status):
            sig = signal.Signals(os.WTERMSIG(status)).name
            hint = (" (a system call outside the unit's filter; the log and "
                    "`strace -f` tell which)" if sig == "SIGSYS" else "")
            fail(f"killed by {sig}{hint}")
        elif os.WEXITSTATUS(status) != 0:
            fail(f"exit status {os.WEXITSTATUS(status)}")
        for message in ("READY=1", "STOPPING=1"):
            if notify.count(message) != 1:
                fail(f"{message} sent {notify.count(message)} times, not once")
        if notify.count("WATCHDOG=1") < 1:
            fail("no WATCHDOG=1 with WATCHDOG_USEC=1000000: WatchdogSec= would kill it")
        files = sorted(os.path.join(d, f) for d, _, fs in os.walk(os.path.join(work, "data"))
                       for f in fs if f.endswith(".h5"))
        if len(files) < 2:
            fail(f"{len(files)} files, expected at least 2 after roll and SIGHUP")
        for path in files:
            mode = stat.S_IMODE(os.stat(path).st_mode)
            if mode & ~(0o777 & ~umask):
                fail(f"{os.path.basename(path)} has mode {mode:o} despite UMask={umask:04o}")
            if run([args.h5rec, "info", path]).returncode != 0:
                fail(f"h5rec info {os.path.basename(path)} failed")
        if not any(f.startswith(f"{setup}:") for f in failures):
            print(f"{setup}: ok under the unit's filter{' as nobody' if user else ''}: "
                  f"{len(files)} files, READY/STOPPING once, "
                  f"{notify.count('WATCHDOG=1')} watchdog pings")
    finally:
        if log_path and any(f.startswith(f"{setup}:") for f in failures):
            print(f"--- h5recd's log ({setup}):")
            print(open(log_path, encoding="utf-8", errors="replace").read()[-3000:])
        shutil.rmtree(work, ignore_errors=True)


def main():
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("unit")
    parser.add_argument("h5recd")
    parser.add_argument("h5rec")
    parser.add_argument("schema_dir")
    args = parser.parse_args()
    for name in ("unit", "h5recd", "h5rec", "schema_dir"):
        setattr(args, name, os.path.abspath(getattr(args, name)))

    if not shutil.which("systemd-analyze"):
        skip("systemd-analyze not found (Debian: apt-get install systemd)")
    name = ctypes.util.find_library("seccomp")
    if not name:
        skip("libseccomp not found (Debian: apt-get install libseccomp2)")
    libseccomp = ctypes.CDLL(name)
    libseccomp.seccomp_init.restype = ctypes.c_void_p
    libseccomp.seccomp_init.argtypes = [ctypes.c_uint32]
    libseccomp.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    libseccomp.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint, ctypes.POINTER(ArgCmp)]
    libseccomp.seccomp_load.argtypes = [ctypes.c_void_p]

    settings = unit_settings(args.unit)
    values = dict(settings)
    if values.get("SystemCallArchitectures") != "native":
        raise SystemExit("FAIL: expected SystemCallArchitectures=native in the unit")
    allowed = allowed_syscalls(settings, syscall_groups())
    ctx = build_filter(libseccomp, settings, allowed)
    umask = int(values.get("UMask", "0022"), 8)
    print(f"{os.path.basename(args.unit)}: {len(allowed)} system calls allowed, "
          f"MemoryDenyWriteExecute={values.get('MemoryDenyWriteExecute', 'no')}, "
          f"RestrictAddressFamilies={values.get('RestrictAddressFamilies', '-')}, "
          f"UMask={umask:04o}")

    failures = []
    for setup in ("weather", "accelerator"):
        record(setup, args, libseccomp, ctx, umask, failures)
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
