#!/bin/sh
# Codec benchmark: every channel compression (lz4, shuffle+lz4, deflate,
# shuffle+deflate, szip; with and without Fletcher-32) through the engine's
# own chunk encoder, on accelerator float32, digitizer int16 and detector
# int16 data, against `lz4 -1`, `gzip -1` and `zstd -1` on the same bytes in
# the same run. See tests/tools/codec_bench.c for what is timed and
# docs/performance.md for results.
#
# Then tests/bench/codec_engine.py: four of the codecs through the whole
# engine (compression pool, HDF5 file) against `lz4 -1` on the same bytes.
#
# Usage: tests/bench/codec_bench.sh [BUILD_DIR] [codec_bench options]
#   BUILD_DIR defaults to ./build; options: --mib N (32) --reps R (5)
#   --chunk-kib K (128) --dir TMPDIR (/var/tmp); CODEC_ENGINE_MIB (256)
#   and CODEC_ENGINE_REPS (3) size the engine part.
set -eu
build=${1:-build}
[ $# -gt 0 ] && shift
bench="${H5REC_TOOLS_DIR:-$build/tests/tools}/codec_bench"
if [ ! -x "$bench" ]; then
	echo "codec_bench.sh: $bench not built (cmake --build $build --target codec_bench)" >&2
	exit 1
fi
command -v lz4 >/dev/null || { echo "codec_bench.sh: the lz4 CLI is not installed" >&2; exit 1; }
echo "commit: $(git -C "$(dirname "$0")" rev-parse --short HEAD 2>/dev/null || echo unknown)"
"$bench" "$@"
echo
exec /usr/bin/python3 "$(dirname "$0")/codec_engine.py" --build "$build" \
	--mib "${CODEC_ENGINE_MIB:-256}" --reps "${CODEC_ENGINE_REPS:-3}"
