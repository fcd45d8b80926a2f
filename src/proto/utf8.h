/*
 * utf8.h - UTF-8 validation for names that come from the network (frame
 * keys, line measurements, tags and fields), which become C strings and
 * HDF5 names. Pure; any thread.
 */
#ifndef H5REC_UTF8_H
#define H5REC_UTF8_H

#include <stddef.h>

/* Length of the UTF-8 sequence starting at s[0] (n ≥ 1 bytes available), or
 * 0 if it is not valid UTF-8 (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF, no truncated sequence). */
size_t utf8_sequence_length(const unsigned char *s, size_t n);

#endif
