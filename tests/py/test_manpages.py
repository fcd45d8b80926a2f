"""Man pages and bash completion: checked against the programs and the docs.

What the pages and the completion must cover is read at test time, not
listed here: the options come from `h5rec --help`, `h5rec CMD --help` and
`h5recd --help`, the schema keys from the key tables of docs/schema.md. An
option or key added later makes these tests fail until man/ and
contrib/bash-completion/ describe it.

Also: every page renders without a groff warning and through man(1);
`cmake --install` puts pages and completions where man and bash-completion
look; the completion completes commands, options, setups, log levels and
file names when driven as bash drives it (COMP_WORDS, COMP_CWORD).
"""
import os
import re
import subprocess

import pytest

from recorder_fixture import BUILD, H5REC, H5RECD, SOURCE

MAN_DIR = os.path.join(SOURCE, "man")
PAGES = {
    "h5rec.1": os.path.join(MAN_DIR, "h5rec.1"),
    "h5recd.8": os.path.join(MAN_DIR, "h5recd.8"),
    "h5rec-schema.5": os.path.join(MAN_DIR, "h5rec-schema.5"),
}
COMPLETION = os.path.join(SOURCE, "contrib", "bash-completion", "h5rec")
SCHEMA_MD = os.path.join(SOURCE, "docs", "schema.md")
TIMEOUT = 30

# An option as --help prints it: not part of a longer word (h5rec-send,
# 3.8e-17, little-endian).
LONG_OPT = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*[a-z0-9]")
SHORT_OPT = re.compile(r"(?<![\w-])-[A-Za-z](?![\w-])")


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, **kw)


def help_text(*argv):
    r = run(list(argv) + ["--help"])
    assert r.returncode == 0, (argv, r.stderr)
    return r.stdout


def options_in(text):
    """Every long and short option named anywhere in a --help text."""
    return set(LONG_OPT.findall(text)) | set(SHORT_OPT.findall(text))


def h5rec_commands():
    """The commands `h5rec --help` lists, in its `commands:` block."""
    text = help_text(H5REC)
    block = text.split("commands:\n", 1)[1].split("\n\n", 1)[0]
    cmds = [line.split()[0] for line in block.splitlines() if line.strip()]
    assert len(cmds) >= 7, text
    return cmds


def roff_text(source):
    """The text of a roff source with escapes a search must see through
    removed: \\- is '-', font changes and \\& vanish."""
    text = re.sub(r"^\.\\\".*$", "", source, flags=re.M)  # comments
    text = text.replace("\\-", "-").replace("\\&", "").replace("\\e", "\\")
    text = re.sub(r"\\f[BIRP]|\\f\(\w\w|\\f\[\w*\]", "", text)
    text = re.sub(r"\\\(\w\w", " ", text)
    return text


def read_page(name):
    with open(PAGES[name], encoding="utf-8") as f:
        return f.read()


def sections(source, macro):
    """{title: body} for the .SH or .SS sections of a page (title without
    quotes, escapes resolved)."""
    out = {}
    title, body = None, []
    for line in roff_text(source).splitlines():
        m = re.match(r"^\.(SH|SS)\s+(.*)$", line)
        if m and (m.group(1) == macro or (macro == "SS" and m.group(1) == "SH")):
            if title is not None:
                out[title] = "\n".join(body)
            title, body = m.group(2).strip().strip('"'), []
        elif title is not None:
            body.append(line)
    if title is not None:
        out[title] = "\n".join(body)
    return out


def mentions(text, word):
    return re.search(r"(?<![\w-])" + re.escape(word) + r"(?![\w-])", text) is not None


# ---- (a) options ------------------------------------------------------------------------


def test_every_command_has_a_section():
    subs = sections(read_page("h5rec.1"), "SS")
    for cmd in h5rec_commands():
        titles = [t for t in subs if t.split()[:2] == ["h5rec", cmd]]
        assert titles, "h5rec(1) has no section 'h5rec %s ...'" % cmd


def test_h5rec_top_level_options_documented():
    page = roff_text(read_page("h5rec.1"))
    top = sections(read_page("h5rec.1"), "SH")["OPTIONS"]
    for opt in options_in(help_text(H5REC)):
        assert mentions(top, opt) or mentions(page, opt), opt
    for opt in ("-h", "--help", "-V", "--version"):
        assert mentions(top, opt), opt


@pytest.mark.parametrize("cmd", h5rec_commands())
def test_command_options_documented(cmd):
    """Each option `h5rec CMD --help` prints is described in that command's
    section of h5rec(1), and the section describes no option the command
    does not have."""
    subs = sections(read_page("h5rec.1"), "SS")
    (title,) = [t for t in subs if t.split()[:2] == ["h5rec", cmd]]
    body = subs[title]
    helped = options_in(help_text(H5REC, cmd))
    missing = sorted(o for o in helped if not mentions(body, o))
    assert not missing, "h5rec(1), 'h5rec %s': undocumented %s" % (cmd, missing)
    # The options the section describes (.TP tags) exist: --help names them
    # (every command takes -h/--help, which `check --help` does not print).
    tagged = set()
    for tag in re.findall(r"^\.TP\n(.*)$", body, flags=re.M):
        tagged |= options_in(tag)
    invented = sorted(tagged - helped - {"-h", "--help"})
    assert not invented, "h5rec(1), 'h5rec %s': not in --help: %s" % (cmd, invented)


def test_h5recd_options_documented():
    secs = sections(read_page("h5recd.8"), "SH")
    body = secs["OPTIONS"]
    helped = options_in(help_text(H5RECD))
    missing = sorted(o for o in helped if not mentions(body, o))
    assert not missing, "h5recd(8) OPTIONS: undocumented %s" % missing
    tagged = set()
    for tag in re.findall(r"^\.TP\n(.*)$", body, flags=re.M):
        tagged |= options_in(tag)
    assert not tagged - helped, "h5recd(8) OPTIONS: not in --help: %s" % (tagged - helped)
    # The log levels --help names.
    levels = re.search(r"--log-level LEVEL\s+(.*?) \(default\) or (\w+)", help_text(H5RECD))
    for level in re.findall(r"\w+", levels.group(1)) + [levels.group(2)]:
        assert mentions(body, level), level


def test_pages_have_the_usual_sections():
    want = {
        "h5rec.1": ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "COMMANDS",
                    "EXIT STATUS", "FILES", "EXAMPLES", "SEE ALSO"],
        "h5recd.8": ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "SIGNALS", "SYSTEMD",
                     "CONTROL SOCKET", "EXIT STATUS", "FILES", "SEE ALSO"],
        "h5rec-schema.5": ["NAME", "SYNOPSIS", "DESCRIPTION", "KEYS", "EXAMPLES",
                           "SEE ALSO"],
    }
    for name, titles in want.items():
        have = sections(read_page(name), "SH")
        for t in titles:
            assert t in have, (name, t)


def test_exit_statuses_match_help():
    """h5rec --help says 0 ok, 1 failure, 2 usage error; h5rec(1) lists the
    same three."""
    text = help_text(H5REC)
    codes = re.findall(r"(\d) [a-z]", text.split("Exit status:", 1)[1])
    body = sections(read_page("h5rec.1"), "SH")["EXIT STATUS"]
    for code in codes:
        assert re.search(r"^\.B %s$" % code, body, flags=re.M), code


# ---- (b) schema keys --------------------------------------------------------------------


def schema_key_tables():
    """{section title: [keys]} from docs/schema.md: the rows of every table
    whose first column is headed `key`, under the `## ` heading they follow
    (backticks removed: `output` -> output)."""
    tables = {}
    heading, in_key_table = None, False
    with open(SCHEMA_MD, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("## "):
                heading, in_key_table = line[3:].replace("`", "").strip(), False
                continue
            if not line.startswith("|"):
                in_key_table = False
                continue
            cells = [c.strip() for c in line.strip("|").split("|")]
            if cells[0] == "key":
                in_key_table = True
                continue
            m = re.match(r"^`([^`]+)`$", cells[0])
            if in_key_table and m:
                tables.setdefault(heading, []).append(m.group(1))
    return tables


def test_schema_md_has_key_tables():
    tables = schema_key_tables()
    # The parse itself: these sections and keys exist today.
    for sec in ("Top level", "output", "control", "listen", "limits", "streams",
                "Channel options"):
        assert sec in tables, sorted(tables)
    assert "roll.every" in tables["output"]
    assert "max_groups" in tables["limits"]


@pytest.mark.parametrize("section", sorted(schema_key_tables()))
def test_schema_keys_documented(section):
    """Every key of a key table of docs/schema.md is a .TP entry in the
    section of h5rec-schema(5) with the same title."""
    subs = sections(read_page("h5rec-schema.5"), "SS")
    matching = [t for t in subs if t.lower() == section.lower()]
    assert matching, "h5rec-schema(5) has no section %r (docs/schema.md has)" % section
    body = subs[matching[0]]
    entries = set(re.findall(r"^\.TP\n\.B (\S+)$", body, flags=re.M))
    keys = schema_key_tables()[section]
    missing = [k for k in keys if k not in entries]
    assert not missing, "h5rec-schema(5), %s: undocumented keys %s" % (section, missing)
    extra = sorted(entries - set(keys))
    assert not extra, "h5rec-schema(5), %s: keys docs/schema.md lacks: %s" % (section, extra)


def test_schema_page_has_no_other_key_sections():
    """Every section under KEYS in h5rec-schema(5) is a key table of
    docs/schema.md (a key section removed there goes here too)."""
    source = roff_text(read_page("h5rec-schema.5"))
    keys_part = source.split("\n.SH KEYS\n", 1)[1].split("\n.SH ", 1)[0]
    titles = re.findall(r"^\.SS\s+\"?([^\"\n]*)\"?$", keys_part, flags=re.M)
    tables = {t.lower() for t in schema_key_tables()}
    assert titles and all(t.lower() in tables for t in titles), (titles, sorted(tables))


def test_schema_page_example_is_valid(tmp_path):
    """The schema in h5rec-schema(5)'s EXAMPLES passes `h5rec check`."""
    body = sections(read_page("h5rec-schema.5"), "SH")["EXAMPLES"]
    example = body.split(".EX\n", 1)[1].split("\n.EE", 1)[0]
    path = tmp_path / "example.yaml"
    path.write_text(example + "\n")
    r = run([H5REC, "check", "-q", str(path)])
    assert r.returncode == 0, r.stdout + r.stderr


# ---- (c) rendering ----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PAGES))
def test_page_renders_without_warnings(name):
    r = run(["groff", "-man", "-ww", "-z", "-t", PAGES[name]])
    assert r.returncode == 0 and r.stderr == "", r.stderr


@pytest.mark.parametrize("name", sorted(PAGES))
def test_man_reads_page(name):
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
    for var in ("MANPAGER", "PAGER", "MAN_KEEP_FORMATTING"):
        env.pop(var, None)
    r = run(["man", "-P", "cat", "-l", PAGES[name]], env=env)
    assert r.returncode == 0, r.stderr
    text = re.sub(r".\x08", "", r.stdout)  # overstrikes, if man keeps them
    title = name.rsplit(".", 1)[0]
    assert "NAME" in text and title in text.split("NAME", 1)[1], text[:400]
    # man's own checks (troff warnings, lines too long for 80 columns).
    assert "warning" not in r.stderr, r.stderr


# ---- (d) installation -------------------------------------------------------------------


def test_cmake_install_puts_pages_and_completions_in_place(tmp_path):
    """The default component, installed to a prefix (what README tells a
    user to run), holds the pages and both completions; man finds the pages
    from the programs' directory on PATH. (cmake leaves its
    install_manifest_Unspecified.txt in the build directory.)"""
    prefix = tmp_path / "prefix"
    r = run(["cmake", "--install", BUILD, "--prefix", str(prefix),
             "--component", "Unspecified"])
    assert r.returncode == 0, r.stdout + r.stderr
    # Nothing of it went outside the prefix.
    for line in r.stdout.splitlines():
        m = re.match(r"^-- (?:Installing|Up-to-date): (.*)$", line)
        if m:
            assert m.group(1).startswith(str(prefix)), line
    want = {
        "share/man/man1/h5rec.1": PAGES["h5rec.1"],
        "share/man/man5/h5rec-schema.5": PAGES["h5rec-schema.5"],
        "share/man/man8/h5recd.8": PAGES["h5recd.8"],
        "share/bash-completion/completions/h5rec": COMPLETION,
        "share/bash-completion/completions/h5recd": COMPLETION,
    }
    for rel, src in want.items():
        path = prefix / rel
        assert path.is_file(), rel
        with open(src, "rb") as f:
            assert path.read_bytes() == f.read(), rel
    env = dict(os.environ, PATH=str(prefix / "bin") + ":" + os.environ["PATH"])
    env.pop("MANPATH", None)
    for section, page in (("1", "h5rec"), ("8", "h5recd"), ("5", "h5rec-schema")):
        r = run(["man", "-w", section, page], env=env)
        assert r.returncode == 0 and r.stdout.startswith(str(prefix)), \
            (page, r.stdout, r.stderr)


# ---- (e) bash completion ----------------------------------------------------------------


def complete(line, cwd=None, completion=COMPLETION):
    """COMPREPLY of the completion function for `line`, the cursor at its
    end, as bash sets up COMP_WORDS (split at blanks, and at '=' and ':',
    which are in COMP_WORDBREAKS) before calling it."""
    script = r'''
set -u
source "$1"
line=$2
COMP_LINE=$line
COMP_POINT=${#line}
words=()
read -ra parts <<<"$line"
for p in "${parts[@]}"; do
    while [[ $p == *[=:]* ]]; do
        head=${p%%[=:]*}
        [[ -n $head ]] && words+=("$head")
        p=${p:${#head}}
        words+=("${p:0:1}")
        p=${p:1}
    done
    [[ -n $p ]] && words+=("$p")
done
if [[ $line == *[\ =:] ]]; then words+=(""); fi
COMP_WORDS=("${words[@]}")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
case ${COMP_WORDS[0]} in
h5recd) _h5recd ;;
*) _h5rec ;;
esac
printf '%s\n' "${COMPREPLY[@]}"
'''
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", script, "bash",
                        completion, line],
                       capture_output=True, text=True, timeout=TIMEOUT, cwd=cwd)
    assert r.returncode == 0, r.stderr
    return [w for w in r.stdout.split("\n") if w]


def test_completion_commands():
    assert complete("h5rec st") == ["status"]
    assert complete("h5rec si") == ["simulate"]
    assert set(h5rec_commands()) <= set(complete("h5rec "))
    assert set(complete("h5rec -")) >= {"-h", "--help", "-V", "--version"}
    assert set(h5rec_commands()) <= set(complete("h5rec help "))


@pytest.mark.parametrize("cmd", h5rec_commands())
def test_completion_has_every_option_of_every_command(cmd):
    offered = set(complete("h5rec %s -" % cmd))
    helped = options_in(help_text(H5REC, cmd))
    assert helped <= offered, "completion of 'h5rec %s -' lacks %s" % (
        cmd, sorted(helped - offered))
    # Long options alone after --.
    longs = set(complete("h5rec %s --" % cmd))
    assert {o for o in helped if o.startswith("--")} <= longs
    assert all(o.startswith("--") for o in longs), longs


def test_completion_status_options():
    assert {"--groups", "--json", "--socket"} <= set(complete("h5rec status --"))


def test_completion_simulate_setups():
    assert complete("h5rec simulate ") == ["weather", "accelerator", "digitizer"]
    assert complete("h5rec simulate acc") == ["accelerator"]
    # An option with its argument before the setup does not count as one.
    assert complete("h5rec simulate -n 5 ") == ["weather", "accelerator", "digitizer"]
    assert complete("h5rec simulate weather ") == []
    # simulate -d is --duration: a number, no file names.
    assert complete("h5rec simulate weather -d ") == []


def test_completion_setups_match_help():
    setups = re.search(r"simulate (\w+)\|(\w+)\|(\w+)", help_text(H5REC, "simulate")).groups()
    assert set(complete("h5rec simulate ")) == set(setups)


def test_completion_h5recd():
    offered = set(complete("h5recd -"))
    helped = options_in(help_text(H5RECD))
    assert helped <= offered, sorted(helped - offered)
    assert complete("h5recd -l ") == ["error", "warning", "notice", "info", "debug"]
    assert complete("h5recd --log-level n") == ["notice"]
    assert complete("h5recd --log-level=d") == ["debug"]
    assert complete("h5recd -w ") == []


@pytest.fixture
def files(tmp_path):
    for name in ("run-0001.h5", "run-0002.h5", "weather.yaml", "digi.yml", "notes.txt"):
        (tmp_path / name).write_text("")
    (tmp_path / "data").mkdir()
    return tmp_path


def test_completion_file_arguments(files):
    cwd = str(files)
    assert sorted(complete("h5rec info ", cwd)) == ["data", "run-0001.h5", "run-0002.h5"]
    assert sorted(complete("h5rec info --json run-", cwd)) == ["run-0001.h5", "run-0002.h5"]
    assert complete("h5rec info run-0001.h5 ", cwd) == []
    assert sorted(complete("h5rec check ", cwd)) == ["data", "digi.yml", "weather.yaml"]
    assert sorted(complete("h5rec status -c ", cwd)) == ["data", "digi.yml", "weather.yaml"]
    assert sorted(complete("h5rec status --config=w", cwd)) == ["weather.yaml"]
    assert sorted(complete("h5recd -c ", cwd)) == ["data", "digi.yml", "weather.yaml"]
    assert sorted(complete("h5rec simulate weather -c ", cwd)) == \
        ["data", "digi.yml", "weather.yaml"]
    assert "notes.txt" in complete("h5rec send -k b/adc0 -d int16 ", cwd)
    assert complete("h5rec send -d f", cwd) == ["float32", "float64"]
    assert complete("h5rec send -t ", cwd) == ["tcp:", "udp:", "unix:"]
    assert complete("h5rec send -t tcp:", cwd) == []
    assert complete("h5rec simulate -t tcp:127.0.0.1:7601 ", cwd) == \
        ["weather", "accelerator", "digitizer"]
    assert complete("h5rec export --layout ", cwd) == ["book"]
    assert complete("h5rec export -i ", cwd) == ["skip", "keep"]
    assert sorted(complete("h5rec export -l book ", cwd)) == \
        ["data", "run-0001.h5", "run-0002.h5"]
    assert sorted(complete("h5rec export -l book run-0001.h5 run", cwd)) == \
        ["run-0001.h5", "run-0002.h5"]
    assert complete("h5rec export -l book run-0001.h5 out.h5 ", cwd) == []
    # Directories are offered, for the path below them.
    (files / "data" / "old.h5").write_text("")
    assert complete("h5rec info data/", cwd) == ["data/old.h5"]


def test_completion_needs_no_bash_completion_package(tmp_path):
    """The file defines its functions and registers them in a bare bash
    (--norc: no bash-completion package loaded)."""
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c",
                        'source "$1" && complete -p h5rec && complete -p h5recd',
                        "bash", COMPLETION],
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert "-F _h5rec h5rec" in r.stdout and "-F _h5recd h5recd" in r.stdout
