/*
 * control.h - the control socket: a Unix stream socket (mode 0660) on which
 * `h5rec status`, `h5rec flush` and `h5rec roll` talk to a running h5recd.
 *
 * The protocol is one request line, one reply, then the recorder closes:
 *
 *   status        the status as text          (reply: the text)
 *   status json   the status as one JSON object
 *   flush         make everything received durable; the reply "flushed"
 *                 comes once the data is flushed and fsync'd
 *   roll          close the current file and start a new one with the next
 *                 data; the reply "rolled" comes once the file is closed
 *
 * Errors are replied as "error: REASON". Loop thread only.
 */
#ifndef H5REC_CONTROL_H
#define H5REC_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "ingest.h"
#include "schema.h"
#include "status.h"

#define CONTROL_MAX_REQUEST 256

struct control;

/*
 * The socket path of SCHEMA (SPEC §7): control.socket if set; else
 * /run/h5rec/NAME.sock where /run/h5rec is writable; else
 * $XDG_RUNTIME_DIR/h5rec-NAME.sock; else /tmp/h5rec-UID/NAME.sock.
 * For the server (create true) the first usable place wins and the private
 * /tmp directory is created (mode 0700). For a client, the first of those
 * places where a socket exists wins, so an operator finds the recorder a
 * service user started; if none exists, the server's choice is returned.
 * Returns 0 or -ENAMETOOLONG / a negative errno.
 */
int control_socket_path(const struct schema *schema, bool create, char *out, size_t len);

/* Bind and listen. err receives the reason on failure. */
int control_start(uv_loop_t *loop, const char *path, struct status *status,
		  struct ingest *ingest, struct control **out, char *err, size_t err_len);

/* The writer's progress (ingest on_progress hook): answers waiting flush and
 * roll requests. */
void control_progress(void *control, uint64_t applied, uint64_t durable);

/* Refuse new flush and roll requests from now on (the recorder is
 * stopping); status still works. */
void control_stopping(struct control *control);

/* Close the socket and every open request, remove the socket file; freed
 * once the loop has run. */
void control_close(struct control *control);

#endif
