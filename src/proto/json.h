/*
 * json.h - text as a JSON string, the one writer the status, `h5rec info
 * --json` and the HTTP listener's error bodies share. Pure; any thread.
 */
#ifndef H5REC_JSON_H
#define H5REC_JSON_H

#include <stddef.h>

/* Write S[0..N) as the inside of a JSON string (no quotes), in pieces
 * through PUT: '"' and '\' escaped, control characters (and DEL) as \u00XX,
 * each byte that is not part of valid UTF-8 as \ufffd, so that the result
 * is valid JSON whatever S holds (names and messages from the network). */
void json_escape(const char *s, size_t n, void (*put)(void *arg, const char *piece, size_t len),
		 void *arg);

#endif
