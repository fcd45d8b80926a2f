#!/bin/sh
# LZ4 benchmark: HDF5 with h5rec's filter plugin vs the lz4 command-line
# tool, on sine+noise float32, random float32 and ramp int32 (SPEC §5,
# issue 3). Prints a table of medians and HDF5/lz4 ratios; see
# tests/tools/lz4_bench.c for what is timed and docs/lz4.md for results.
#
# Usage: tests/bench/lz4_bench.sh [BUILD_DIR] [lz4_bench options]
#   BUILD_DIR defaults to ./build; options: --mib N (64) --reps R (7)
#   --chunk-kib K (4096) --block BYTES (0 = whole chunk) --dir TMPDIR
set -eu
build=${1:-build}
[ $# -gt 0 ] && shift
# (the test suite passes its own locations through the environment)
bench="${H5REC_TOOLS_DIR:-$build/tests/tools}/lz4_bench"
plugins="${H5REC_PLUGIN_DIR:-$build/plugins}"
if [ ! -x "$bench" ]; then
	echo "lz4_bench.sh: $bench not built (cmake --build $build --target lz4_bench h5z_lz4)" >&2
	exit 1
fi
command -v lz4 >/dev/null || { echo "lz4_bench.sh: the lz4 CLI is not installed" >&2; exit 1; }
exec "$bench" --plugin-dir "$plugins" "$@"
