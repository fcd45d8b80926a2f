/*
 * schema_units.c - sizes ("64MiB") and durations ("250ms") in the schema.
 *
 * Both are parsed strictly: a unit is always required (a bare "10" could mean
 * bytes or kilobytes, seconds or milliseconds, and a recorder that guesses
 * wrong loses data), there is no sign, no exponent and no space, and
 * overflow is an error rather than a wrap. Sizes are whole bytes; durations
 * may have a fraction ("1.5s") as long as the result is whole nanoseconds.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "schema_internal.h"

struct unit {
	const char *name;
	uint64_t factor;
};

static const struct unit size_units[] = {
	{"B", 1},
	{"KiB", UINT64_C(1) << 10},
	{"MiB", UINT64_C(1) << 20},
	{"GiB", UINT64_C(1) << 30},
	{"TiB", UINT64_C(1) << 40},
	{"KB", UINT64_C(1000)},
	{"MB", UINT64_C(1000000)},
	{"GB", UINT64_C(1000000000)},
	{"TB", UINT64_C(1000000000000)},
};

static const struct unit duration_units[] = {
	{"ns", 1},
	{"us", UINT64_C(1000)},
	{"ms", UINT64_C(1000000)},
	{"s", UINT64_C(1000000000)},
	{"m", UINT64_C(60000000000)},
	{"min", UINT64_C(60000000000)},
	{"h", UINT64_C(3600000000000)},
	{"d", UINT64_C(86400000000000)},
};

static const struct unit *find_unit(const struct unit *units, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(units[i].name, name) == 0)
			return &units[i];
	return NULL;
}

/* Read decimal digits into *value; returns the number of digits read, or -1
 * on overflow. */
static int read_digits(const char **p, uint64_t *value, int *ndigits)
{
	uint64_t v = 0;
	int n = 0;

	while (**p >= '0' && **p <= '9') {
		unsigned d = (unsigned)(**p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
		(*p)++;
		n++;
	}
	*value = v;
	*ndigits = n;
	return 0;
}

int schema_parse_size(const char *text, uint64_t *bytes)
{
	const char *p = text;
	uint64_t value;
	int ndigits;

	if (read_digits(&p, &value, &ndigits) < 0)
		return -ERANGE;
	if (ndigits == 0)
		return -EINVAL;
	const struct unit *unit =
		find_unit(size_units, sizeof(size_units) / sizeof(size_units[0]), p);
	if (!unit)
		return -EINVAL;
	if (value > SCHEMA_SIZE_MAX / unit->factor)
		return -ERANGE;
	*bytes = value * unit->factor;
	return 0;
}

static uint64_t gcd(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

int schema_parse_duration(const char *text, int64_t *ns)
{
	const char *p = text;
	uint64_t whole, frac = 0;
	int nwhole, nfrac = 0;

	if (read_digits(&p, &whole, &nwhole) < 0)
		return -ERANGE;
	if (*p == '.') {
		p++;
		/* More than 18 fraction digits is never a whole nanosecond
		 * count for any unit we have, and would overflow below. */
		if (read_digits(&p, &frac, &nfrac) < 0 || nfrac > 18)
			return -EINVAL;
		if (nfrac == 0)
			return -EINVAL;
	}
	if (nwhole == 0)
		return -EINVAL;
	const struct unit *unit =
		find_unit(duration_units, sizeof(duration_units) / sizeof(duration_units[0]), p);
	if (!unit)
		return -EINVAL;
	if (whole > (uint64_t)INT64_MAX / unit->factor)
		return -ERANGE;
	uint64_t total = whole * unit->factor;
	if (nfrac > 0) {
		/* frac / 10^nfrac * factor must be a whole number of ns. With
		 * g = gcd(factor, 10^nfrac) that holds exactly when frac is a
		 * multiple of 10^nfrac / g, and the product then never needs
		 * more than 64 bits before the overflow check. */
		uint64_t scale = 1;
		for (int i = 0; i < nfrac; i++)
			scale *= 10;
		uint64_t g = gcd(unit->factor, scale);
		if (frac % (scale / g) != 0)
			return -EINVAL;
		uint64_t count = frac / (scale / g), per = unit->factor / g;
		if (count != 0 && per > (uint64_t)INT64_MAX / count)
			return -ERANGE;
		uint64_t part = count * per;
		if (part > (uint64_t)INT64_MAX - total)
			return -ERANGE;
		total += part;
	}
	*ns = (int64_t)total;
	return 0;
}

static void format_with(uint64_t value, const struct unit *units, size_t n, char *out,
			size_t outlen)
{
	const struct unit *best = &units[0];

	for (size_t i = 0; i < n; i++)
		if (value != 0 && value % units[i].factor == 0 && units[i].factor > best->factor)
			best = &units[i];
	snprintf(out, outlen, "%llu%s", (unsigned long long)(value / best->factor), best->name);
}

void schema_format_size(uint64_t bytes, char *out, size_t outlen)
{
	/* Binary units only: they are what the defaults and examples use. */
	format_with(bytes, size_units, 5, out, outlen);
}

void schema_format_duration(int64_t ns, char *out, size_t outlen)
{
	/* Skip "m" so that a minute prints as "1min", never ambiguous. */
	static const struct unit units[] = {
		{"ns", 1},
		{"us", UINT64_C(1000)},
		{"ms", UINT64_C(1000000)},
		{"s", UINT64_C(1000000000)},
		{"min", UINT64_C(60000000000)},
		{"h", UINT64_C(3600000000000)},
		{"d", UINT64_C(86400000000000)},
	};
	format_with(ns < 0 ? 0 : (uint64_t)ns, units, sizeof(units) / sizeof(units[0]), out,
		    outlen);
}
