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
 *
 * Limits, so that local clients cannot pin descriptors the writer needs:
 * at most CONTROL_MAX_CONNECTIONS are open at once, and one that has not
 * sent a whole request (or not taken its reply) within
 * CONTROL_IDLE_TIMEOUT_MS is closed. A flush or roll waiting for the
 * writer is a request in progress, not idleness.
 *
 * Where the socket lives is checked as ssh-agent and tmux check theirs
 * (see control_check_socket), by the recorder before it binds and by the
 * client before it believes an answer.
 */
#ifndef H5REC_CONTROL_H
#define H5REC_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "ingest.h"
#include "schema.h"
#include "status.h"

#define CONTROL_MAX_REQUEST 4096 /* a run start with its attributes */
#define CONTROL_MAX_CONNECTIONS 16
#define CONTROL_IDLE_TIMEOUT_MS 10000

struct control;

/*
 * The socket path of SCHEMA (SPEC §7): control.socket if set; else
 * /run/h5rec/NAME.sock where /run/h5rec is writable; else
 * $XDG_RUNTIME_DIR/h5rec-NAME.sock; else /tmp/h5rec-UID/NAME.sock.
 * For the server (create true) the first writable place wins and the
 * private /tmp directory is created (mode 0700); whether the place is safe
 * is control_start's to judge, as it can say why. For a client, the first
 * of those places where a socket exists wins, so an operator finds the
 * recorder a service user started; if none exists, the server's choice is
 * returned. Returns 0 or -ENAMETOOLONG / a negative errno.
 */
int control_socket_path(const struct schema *schema, bool create, char *out, size_t len);

/*
 * May this process (its effective uid) believe the socket at PATH? Whoever
 * can create names in its directory could have put a socket there to answer
 * in the recorder's place, so:
 *
 *  - the directory must be a real directory (not a symbolic link) that
 *    neither its group nor others can write, not even with the sticky bit
 *    (/tmp itself is refused: /tmp/h5rec-UID exists for that);
 *  - the directory above it must be owned by root, the user or the
 *    directory's owner, and writable by nobody else unless it is sticky,
 *    so that nobody can swap the directory;
 *  - the directory must belong to the user. A per-user place
 *    (/tmp/h5rec-UID, $XDG_RUNTIME_DIR) admits no exception, even for
 *    root. Elsewhere it may belong to root, or to a user root gave it to:
 *    its parent is root's and only root can write it (/run/h5rec under
 *    systemd, owned by the service user); and root may talk to any user's
 *    private directory it names, since root chose whom to ask;
 *  - the socket must belong to the user, root or the directory's owner.
 *
 * *OWNER receives the socket's owner, the uid the listening process may
 * have (see SO_PEERCRED). Returns 0; -EPERM with WHY naming the path, the
 * owner and what is wrong; or a negative errno (no such socket, ...) with
 * WHY saying where.
 */
int control_check_socket(const char *path, uid_t *owner, char *why, size_t why_len);

/* Bind and listen. The socket's directory is first checked by the rules of
 * control_check_socket for the recorder's effective uid (without root's
 * latitude for named paths). err receives the reason on failure. */
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
