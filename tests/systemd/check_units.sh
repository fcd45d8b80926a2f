#!/bin/bash
# check_units.sh - are the installed systemd units, sysusers.d and
# tmpfiles.d entries valid, and are the units hardened well enough?
#
#   check_units.sh BUILD_DIR H5REC
#
# Environment (set by tests/systemd/CMakeLists.txt): H5REC_SYSTEMD_UNIT_DIR,
# H5REC_SYSUSERS_DIR, H5REC_TMPFILES_DIR, the configured install directories.
#
# Everything works offline, without systemd running as PID 1:
#  1. `cmake --install BUILD_DIR` into a scratch DESTDIR: what is checked is
#     what a package would ship, not the source templates.
#  2. The units' ExecStart names a program and a schema that the install
#     put there, and `h5rec check` accepts that schema.
#  3. `systemd-analyze verify` on h5recd.service and h5recd@weather.service.
#     verify insists that ExecStart exists on this machine, so it is given a
#     copy whose ExecStart path (and nothing else) points into the DESTDIR;
#     without procps' /bin/kill here, ExecReload= becomes /bin/true (noted).
#     Any message from verify is a failure: unknown or misspelt settings are
#     only warnings to systemd.
#  4. `systemd-analyze security --offline=yes --threshold=20`: the overall
#     exposure level of each unit must be 2.0 or lower; the figures are
#     printed.
#  5. systemd-sysusers and systemd-tmpfiles apply the entries to a scratch
#     --root: user and group h5rec, home /var/lib/h5rec, directories 0750.
#     Not being root, only the chown of step 5 may fail.
# Exit status: 0 pass, 1 fail, 77 skip (systemd-analyze is not installed).
set -u

if [ $# -ne 2 ]; then
	echo "usage: $0 BUILD_DIR H5REC" >&2
	exit 2
fi
build_dir=$1
h5rec=$2
: "${H5REC_SYSTEMD_UNIT_DIR:?}" "${H5REC_SYSUSERS_DIR:?}" "${H5REC_TMPFILES_DIR:?}"
max_exposure=20 # tenths, as --threshold counts: 2.0

if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "SKIP: systemd-analyze not found (Debian: apt-get install systemd)"
	exit 77
fi

failures=0
fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/destdir

# 1. Install.
if ! DESTDIR=$root cmake --install "$build_dir" >"$tmp/install.log" 2>&1; then
	cat "$tmp/install.log"
	echo "FAIL: cmake --install $build_dir"
	exit 1
fi
unit_dir=$root$H5REC_SYSTEMD_UNIT_DIR
for unit in h5recd.service h5recd@.service; do
	[ -f "$unit_dir/$unit" ] || fail "$unit is not installed in $H5REC_SYSTEMD_UNIT_DIR"
done
[ $failures -eq 0 ] || exit 1

# 2. The paths inside the units.
exec_start() { sed -n 's/^ExecStart=//p' "$1"; }
read -r program _ schema _ <<<"$(exec_start "$unit_dir/h5recd.service")"
read -r template_program _ template_schema _ <<<"$(exec_start "$unit_dir/h5recd@.service")"
echo "h5recd.service:  ExecStart program $program, schema $schema"
echo "h5recd@.service: ExecStart program $template_program, schema $template_schema"
[ -x "$root$program" ] || fail "ExecStart program $program is not installed"
[ "$template_program" = "$program" ] || fail "the two units run different programs"
[ "$template_schema" = "$(dirname "$schema")/%i.yaml" ] ||
	fail "h5recd@.service reads $template_schema, not %i.yaml next to $schema"
if [ -f "$root$schema" ]; then
	"$h5rec" check "$root$schema" >"$tmp/check.log" 2>&1 ||
		{ cat "$tmp/check.log"; fail "h5rec check $schema"; }
else
	fail "the schema $schema is not installed"
fi

# 3. verify, on copies that run the program from the DESTDIR.
mkdir "$tmp/units"
reload_fix=
if grep -q '^ExecReload=/bin/kill ' "$unit_dir/h5recd.service" && [ ! -x /bin/kill ]; then
	echo "note: /bin/kill (Debian: procps) is not installed here; the copies verified" \
		"run ExecReload=/bin/true instead (the unit needs procps on the target)"
	reload_fix='s#^ExecReload=/bin/kill .*#ExecReload=/bin/true#'
fi
for unit in h5recd.service h5recd@.service; do
	sed -e "s#^ExecStart=$program #ExecStart=$root$program #" ${reload_fix:+-e "$reload_fix"} \
		"$unit_dir/$unit" >"$tmp/units/$unit"
done
for unit in h5recd.service h5recd@weather.service; do
	if systemd-analyze verify --man=no "$tmp/units/$unit" >"$tmp/verify.log" 2>&1 &&
		[ ! -s "$tmp/verify.log" ]; then
		echo "verify $unit: ok"
	else
		cat "$tmp/verify.log"
		fail "systemd-analyze verify $unit"
	fi
done

# 4. Exposure levels.
for unit in h5recd.service h5recd@weather.service; do
	systemd-analyze security --offline=yes --threshold=$max_exposure --no-pager \
		"$tmp/units/$unit" >"$tmp/security.log" 2>&1
	status=$?
	level=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' "$tmp/security.log")
	if [ -z "$level" ]; then
		cat "$tmp/security.log"
		fail "no exposure level for $unit"
	elif [ $status -ne 0 ]; then
		grep '✗' "$tmp/security.log"
		fail "$unit: exposure level $level is above 2.0"
	else
		echo "security $unit: exposure level $level (at most 2.0)"
	fi
done

# 5. sysusers.d and tmpfiles.d, applied to a scratch root.
sysroot=$tmp/sysroot
mkdir -p "$sysroot/etc"
sysusers=$root$H5REC_SYSUSERS_DIR/h5rec.conf
tmpfiles=$root$H5REC_TMPFILES_DIR/h5rec.conf
[ -f "$sysusers" ] || fail "sysusers.d/h5rec.conf is not installed in $H5REC_SYSUSERS_DIR"
[ -f "$tmpfiles" ] || fail "tmpfiles.d/h5rec.conf is not installed in $H5REC_TMPFILES_DIR"
if ! command -v systemd-sysusers >/dev/null 2>&1 || ! command -v systemd-tmpfiles >/dev/null 2>&1; then
	echo "note: systemd-sysusers/systemd-tmpfiles not found; entries not applied"
elif [ -f "$sysusers" ] && [ -f "$tmpfiles" ]; then
	if systemd-sysusers --root="$sysroot" "$sysusers" >"$tmp/sysusers.log" 2>&1; then
		user=$(grep '^h5rec:' "$sysroot/etc/passwd")
		group=$(grep '^h5rec:' "$sysroot/etc/group")
		case $user in
		h5rec:x:*:*:*:/var/lib/h5rec:*nologin) echo "sysusers: $user" ;;
		*) fail "sysusers made '$user', not a nologin user h5rec with home /var/lib/h5rec" ;;
		esac
		[ -n "$group" ] || fail "sysusers made no group h5rec"
	else
		cat "$tmp/sysusers.log"
		fail "systemd-sysusers $sysusers"
	fi
	systemd-tmpfiles --root="$sysroot" --create "$tmpfiles" >"$tmp/tmpfiles.log" 2>&1
	status=$?
	if [ $status -ne 0 ] && { [ "$(id -u)" -eq 0 ] ||
		grep -v 'fchownat() .* failed: Operation not permitted' "$tmp/tmpfiles.log" | grep -q .; }; then
		cat "$tmp/tmpfiles.log"
		fail "systemd-tmpfiles --create $tmpfiles"
	fi
	uid=$(echo "$user" | cut -d: -f3)
	for dir in /var/lib/h5rec /run/h5rec; do
		got=$(stat -c '%a %u %g' "$sysroot$dir" 2>/dev/null)
		case $got in
		"750 $uid $uid") echo "tmpfiles: $dir $got" ;;
		750\ *)
			if [ "$(id -u)" -ne 0 ]; then
				echo "tmpfiles: $dir $got (not root: owner not set)"
			else
				fail "tmpfiles made $dir '$got', not 750 h5rec h5rec"
			fi
			;;
		*) fail "tmpfiles made $dir '$got', not 750 h5rec h5rec" ;;
		esac
	done
fi

if [ $failures -ne 0 ]; then
	echo "$failures check(s) failed"
	exit 1
fi
echo "all systemd checks passed"
