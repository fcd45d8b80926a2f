/*
 * utf8.h - UTF-8 validation for names that come from the network (frame
 * keys, line measurements, tags and fields), which become C strings and
 * HDF5 names. Pure; any thread.
 */
#ifndef H5REC_UTF8_H
#define H5REC_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length of the UTF-8 sequence starting at s[0] (n ≥ 1 bytes available), or
 * 0 if it is not valid UTF-8 (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF, no truncated sequence). */
size_t utf8_sequence_length(const unsigned char *s, size_t n);

/* The length of the longest prefix of S (N bytes) of at most MAX bytes that
 * ends at a sequence boundary, or SIZE_MAX if a sequence that starts in the
 * first MAX bytes is not valid UTF-8 (what lies beyond is not looked at):
 * for text that is kept up to a bound, cut without splitting a character. */
size_t utf8_prefix(const unsigned char *s, size_t n, size_t max);

#endif
