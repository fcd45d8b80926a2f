/*
 * fuzz_h5lz4.c - libFuzzer target for the LZ4 chunk codec (plugins/h5lz4.c).
 *
 * Each input is used twice:
 *  - as an encoded chunk: h5lz4_decoded_size/h5lz4_decode must either
 *    refuse it or decode exactly the announced size, never read or write out
 *    of bounds (ASan), and the size they accept is bounded by the expansion
 *    limit, so the allocation here cannot explode; decoding in place must
 *    agree with decoding to a new buffer; whatever decodes must re-encode
 *    and decode to the same bytes;
 *  - as raw chunk data: encoding it with a block size taken from its first
 *    bytes and decoding the result must give it back.
 * Any violated expectation aborts, which libFuzzer reports as a crash.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "h5lz4.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void round_trip(const uint8_t *data, size_t size, uint32_t block_size)
{
	size_t cap = h5lz4_bound(size, block_size);
	uint8_t *enc = malloc(cap);
	uint8_t *dec = malloc(size ? size : 1);
	size_t enc_len = 0, dec_len = 0;
	uint64_t announced = 0;

	if (!enc || !dec)
		abort();
	if (h5lz4_encode(data, size, block_size, enc, cap, &enc_len) != 0)
		abort();
	if (h5lz4_decoded_size(enc, enc_len, &announced) != 0 || announced != size)
		abort();
	if (h5lz4_decode(enc, enc_len, dec, size, &dec_len) != 0 || dec_len != size ||
	    memcmp(dec, data, size) != 0)
		abort();
	free(enc);
	free(dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t announced = 0;

	if (h5lz4_decoded_size(data, size, &announced) == 0) {
		uint8_t *out;
		size_t out_len = 0;
		uint32_t block_size = (uint32_t)data[8] << 24 | (uint32_t)data[9] << 16 |
				      (uint32_t)data[10] << 8 | data[11];

		if (announced > (uint64_t)size * 255)
			abort();
		out = malloc(announced ? (size_t)announced : 1);
		if (!out)
			abort();
		if (h5lz4_decode(data, size, out, (size_t)announced, &out_len) == 0) {
			uint8_t *copy = malloc(size);
			size_t in_place_len = 0;
			int err;

			if (out_len != announced || !copy)
				abort();
			memcpy(copy, data, size);
			err = h5lz4_decode_raw_in_place(copy, size, &in_place_len);
			if (err == 0 && (in_place_len != out_len || memcmp(copy, out, out_len) != 0))
				abort();
			if (err != 0 && err != -EAGAIN)
				abort();
			free(copy);
			round_trip(out, out_len, block_size);
		} else {
			uint8_t *copy = malloc(size);
			size_t in_place_len = 0;

			if (!copy)
				abort();
			memcpy(copy, data, size);
			/* raw blocks cannot fail to decode: in place must refuse too */
			if (h5lz4_decode_raw_in_place(copy, size, &in_place_len) != -EAGAIN)
				abort();
			free(copy);
		}
		free(out);
	}
	if (size >= 2)
		round_trip(data + 2, size - 2, (uint32_t)data[0] << 8 | data[1]);
	return 0;
}
