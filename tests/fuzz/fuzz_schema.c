/*
 * fuzz_schema.c - libFuzzer target for the schema loader: any bytes must
 * either load into a model or be rejected with a "FILE:LINE:COL: message"
 * error, without a crash, a leak or undefined behaviour (ASan+UBSan).
 * Seeds: the example schemas and the invalid ones of the unit tests.
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11
 *        -I src/schema -I src/proto -I plugins tests/fuzz/fuzz_schema.c
 *        src/schema/schema*.c src/proto/dtype.c
 *        -lyaml -lm -o fuzz_schema
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct schema *schema = NULL;
	struct schema_error err;

	memset(&err, 0, sizeof(err));
	int rc = schema_load_string((const char *)data, size, "f.yaml", &schema, &err);
	if (rc == 0) {
		if (!schema || schema->source_len != size)
			abort(); /* the model keeps the exact source text */
		schema_free(schema);
	} else if (schema || strncmp(err.message, "f.yaml:", 7) != 0) {
		abort(); /* every rejection names the file and a position */
	}
	return 0;
}
