"""README's quick start, as a new user meets it: in a fresh clone of this
repository (its last commit), `bash .ci/demo` sets up, builds, records the
demo and prints the next commands with full paths; those commands are then
run as printed and must work: record the example weather stations, show
the recorder's status, stop it cleanly, and show what the file holds.

`bash .ci/run` (the other quick-start command) is what runs this test, so
it is only checked to be the README's second command. The clone builds
from scratch (a few minutes); the test is skipped in the sanitizer run,
which adds nothing to it.
"""
import os
import re
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("H5REC_SOURCE_DIR", os.path.dirname(os.path.dirname(HERE)))

pytestmark = pytest.mark.skipif(bool(os.environ.get("H5REC_SANITIZED")),
                                reason="the quick start builds its own plain build")


def quick_start_commands():
    with open(os.path.join(SOURCE, "README.md")) as f:
        text = f.read()
    section = text.split("## Quick start", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]


def test_readme_quick_start_is_two_commands():
    assert quick_start_commands() == ["bash .ci/demo", "bash .ci/run"]


def test_demo_in_a_fresh_clone_and_its_next_steps(tmp_path):
    if not os.path.isdir(os.path.join(SOURCE, ".git")) or not shutil.which("git"):
        pytest.skip("not a git checkout")
    clone = tmp_path / "h5rec"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", SOURCE, str(clone)], check=True,
                   timeout=120)
    env = dict(os.environ)
    for name in list(env):  # the clone finds its own build, as a user's would
        if name.startswith("H5REC") or name == "HDF5_PLUGIN_PATH":
            del env[name]
    demo = subprocess.run(["bash", ".ci/demo"], cwd=clone, capture_output=True, text=True,
                          timeout=1500, env=env)
    out = demo.stdout
    assert demo.returncode == 0, out[-3000:] + demo.stderr[-3000:]
    assert "h5recd" in out and "stopped cleanly" in out + demo.stderr
    assert re.search(r"Recorded into \S+\.h5", out), out[-2000:]

    # the printed next steps, run as printed
    steps = out.split("== next steps", 1)[1]
    assert f"{clone}/build/src, not on PATH" in steps, steps
    commands = [line[2:] for line in steps.split("run:\n", 1)[1].splitlines()
                if line.startswith("  ")]
    assert commands[0].startswith("cd ") and any("simulate weather" in c for c in commands)
    script = tmp_path / "next.sh"
    script.write_text("set -e\n" + "\n".join(commands) + "\n")
    run = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=300,
                         env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "schema weather" in run.stdout, run.stdout  # h5rec status
    assert re.search(r"sent [1-9]\d* lines", run.stdout + run.stderr), run.stdout + run.stderr
    assert "errors: none" in run.stdout, run.stdout  # nothing the recorder rejected
    assert re.search(r"^  /1/temperature +float32", run.stdout, re.M), run.stdout  # info
    log = (clone / "build" / "demo" / "weather.log").read_text()
    assert "stopped cleanly" in log, log
