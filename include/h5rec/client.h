/*
 * h5rec/client.h - libh5rec-client: send frames to an h5rec recorder
 * (h5recd) over the frame protocol, and keep every frame until the
 * recorder says it is durable.
 *
 * What it promises: nothing acknowledged is lost, nothing unacknowledged
 * is forgotten. Every DATA and EVENT frame is kept in a bounded replay
 * buffer until an ACK from the recorder covers it (an ACK carries the
 * highest seq that is in the file and fsync'd). When the recorder closes
 * the connection or restarts, the client connects again, says HELLO again
 * and resends, with their original seq, exactly the frames no ACK covered
 * yet. The recorder stores what it receives: a frame it had already
 * written when it went away, but not yet acknowledged, is then stored
 * twice. After a clean stop (SIGTERM) the recorder has acknowledged all it
 * wrote once the client has waited for it (h5rec_client_wait()), and
 * nothing is stored twice. UDP has no ACKs: frames go out once and are not
 * kept.
 *
 * Conventions (as libuv's): functions return 0 or a negative errno code;
 * h5rec_client_error() says why in words. The library has no global state
 * and starts no thread unless asked to (h5rec_client_set_encode_threads()).
 *
 * Thread safety: one handle is used by one thread at a time (the caller
 * serialises calls on a handle; no function blocks another handle).
 * Different handles may be used from different threads at once.
 *
 * Modes: a blocking client (the default) waits inside the calls: for room
 * in the replay buffer, for a reconnect, for ACKs. A non-blocking client
 * never waits: the program polls h5rec_client_fd() for
 * h5rec_client_events(), no longer than h5rec_client_timeout(), and calls
 * h5rec_client_process() when it returns.
 *
 * The soname changes whenever this header changes incompatibly, including
 * struct h5rec_client_options.
 */
#ifndef H5REC_CLIENT_H
#define H5REC_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define H5REC_CLIENT_API __attribute__((visibility("default")))
#else
#define H5REC_CLIENT_API
#endif

/* Sample types: the frame protocol's dtype numbers (SPEC §3.1). */
enum h5rec_dtype {
	H5REC_INT8 = 1,
	H5REC_UINT8 = 2,
	H5REC_INT16 = 3,
	H5REC_UINT16 = 4,
	H5REC_INT32 = 5,
	H5REC_UINT32 = 6,
	H5REC_INT64 = 7,
	H5REC_UINT64 = 8,
	H5REC_FLOAT32 = 9,
	H5REC_FLOAT64 = 10,
};

struct h5rec_client_options {
	const char *address;     /* "tcp:HOST:PORT", "unix:PATH", "udp:HOST:PORT"; required */
	const char *name;        /* sender name in HELLO; NULL: "h5rec-client" */
	const char *token;       /* the listener's token; NULL: none */
	int nonblocking;         /* non-zero: never wait (see the modes above) */
	size_t replay_bytes;     /* bound of the replay buffer; default 64 MiB */
	unsigned reconnect_attempts; /* give up after this many tries without
				      * progress; default 20; 0: never reconnect,
				      * and keep no frame once written */
	unsigned reconnect_delay_ms; /* first wait before reconnecting, doubled per try
				      * up to 5 s; default 100 */
	unsigned timeout_ms;     /* blocking mode: longest wait for room in the
				  * replay buffer; default 30000 */
};

struct h5rec_client;

/* Fill *options with the defaults (every field 0 or NULL but those). */
H5REC_CLIENT_API void h5rec_client_options_init(struct h5rec_client_options *options);

/* Create a client and connect. A blocking client connects now and has
 * sent its HELLO when this returns; a non-blocking one starts connecting
 * and finishes in h5rec_client_process(). Errors: -EINVAL (bad address or
 * option), -ENOMEM, or the connect error (-ECONNREFUSED, -ENOENT, ...).
 * On error *out is NULL. */
H5REC_CLIENT_API int h5rec_client_open(const struct h5rec_client_options *options,
				       struct h5rec_client **out);

/* Close the connection and free the client; frames not yet acknowledged
 * are dropped (wait for them first with h5rec_client_wait()). NULL is
 * allowed. */
H5REC_CLIENT_API void h5rec_client_close(struct h5rec_client *client);

/* Queue a DATA frame of count samples of dtype for the channel key, with
 * the time of its first sample t0 (ns since 1970) and event_id (0: none).
 * The frame is copied into the replay buffer and gets the next seq
 * (h5rec_client_last_seq()); samples may be reused on return. Errors:
 * -EINVAL (key empty, over 1024 bytes or not UTF-8, bad dtype, payload
 * over 4 GiB), -EAGAIN (non-blocking: no room in the replay buffer, try
 * after h5rec_client_process(); a frame larger than replay_bytes fits
 * only an empty buffer),
 * -ETIMEDOUT (blocking: no room within timeout_ms), -ENOMEM, and the
 * client's failure (see h5rec_client_process()). */
H5REC_CLIENT_API int h5rec_client_data(struct h5rec_client *client, const char *key,
				       enum h5rec_dtype dtype, int64_t t0, uint64_t event_id,
				       const void *samples, size_t count);

/* The same with the samples gathered from iov[0..iovcnt): a channel's
 * samples in several buffers (a ring buffer's two halves, a DMA block
 * list) are copied once, straight into the replay buffer, with no
 * assembling on the caller's side. The total size must be a whole number
 * of samples (-EINVAL otherwise). */
H5REC_CLIENT_API int h5rec_client_datav(struct h5rec_client *client, const char *key,
					enum h5rec_dtype dtype, int64_t t0, uint64_t event_id,
					const struct iovec *iov, int iovcnt);

/* Queue a waveform pre-compressed (docs/protocols.md §1.5): the samples
 * are whole chunks of the channel (a records waveform; for a stream
 * channel a whole number of its chunks, one frame), encoded here
 * with the channel's HDF5 filter pipeline (shuffle, LZ4 or deflate,
 * Fletcher-32), which the client asks the recorder for (a DESCRIBE frame)
 * the first time it sees the key on a connection; the recorder stores the
 * chunk without compressing it. A blocking client waits for that answer
 * (within timeout_ms); a non-blocking one returns -EAGAIN after asking:
 * call again after h5rec_client_process(). Errors as h5rec_client_data(),
 * and -EINVAL when the channel takes no pre-compressed chunks or stores
 * chunks of another dtype or length (h5rec_client_error() gives the
 * recorder's reason), -ENOTSUP over UDP (nobody answers DESCRIBE), -EPROTO
 * when the recorder closes the connection instead of answering (one older
 * than pre-compressed chunks refuses DESCRIBE). Safe to
 * call from one thread per handle; handles on other threads encode in
 * parallel, and so does one handle with encoder threads (below). */
H5REC_CLIENT_API int h5rec_client_data_chunk(struct h5rec_client *client, const char *key,
					     enum h5rec_dtype dtype, int64_t t0,
					     uint64_t event_id, const void *samples,
					     size_t count);

/* Encode the frames of h5rec_client_data_chunk() on THREADS threads of
 * the client (0 or 1: on the calling thread, the default; at most 256).
 * With threads, h5rec_client_data_chunk() asks the recorder for the
 * pipeline as before, copies the samples and returns; the frame is queued
 * with the seq h5rec_client_last_seq() then says, in call order, by a later
 * call (any of them, h5rec_client_process() included) once its encoding
 * is done. The copies waiting to be encoded are bounded by replay_bytes:
 * beyond it a blocking client waits (timeout_ms), a non-blocking one gets
 * -EAGAIN. Every call that queues another frame (data, event, a first
 * data_chunk of a key on a connection, which asks DESCRIBE) first queues
 * the frames being encoded, waiting for them (non-blocking: -EAGAIN while
 * any is not done), so nothing overtakes them; h5rec_client_wait() waits
 * for them too. A non-blocking client's h5rec_client_timeout() is then at
 * most 1 ms, since a finished encoding cannot wake its poll(). An
 * encoder's error (-ENOMEM, -EIO: the codec failed) is the client's
 * failure, returned by the next call with the key and seq in
 * h5rec_client_error(). The threads block every signal, and are stopped
 * by h5rec_client_close() (frames not yet queued are dropped with the
 * rest). Changing the number first queues what is pending. Errors:
 * -EINVAL (over 256), -EAGAIN (non-blocking: frames still being encoded),
 * -ETIMEDOUT, the client's failure, or why the threads could not start
 * (-ENOMEM, -EAGAIN, -EMFILE). */
H5REC_CLIENT_API int h5rec_client_set_encode_threads(struct h5rec_client *client,
						     unsigned threads);

/* Queue an EVENT frame: key is the records stream's name, event_id not 0,
 * t0 the event's time, fields a line-protocol field set
 * ('mass=3.8e-17,run="Run3"'). Errors as h5rec_client_data(). */
H5REC_CLIENT_API int h5rec_client_event(struct h5rec_client *client, const char *key,
					uint64_t event_id, int64_t t0, const char *fields);

/* The seq of the last frame queued (frames are numbered from 1), those
 * still with the encoder threads included; 0 before the first. */
H5REC_CLIENT_API uint64_t h5rec_client_last_seq(const struct h5rec_client *client);

/* The highest seq the recorder has acknowledged as durable; 0 while none
 * is. Every frame up to it is in the recorder's file. */
H5REC_CLIENT_API uint64_t h5rec_client_durable_seq(const struct h5rec_client *client);

/* Wait until the frame with this seq is durable (seq 0, or
 * h5rec_client_last_seq(): everything queued so far), making progress
 * meanwhile (sending, reconnecting). Errors: -ETIMEDOUT after timeout_ms
 * (-1: no limit), -EAGAIN (non-blocking client: not yet; nothing waited),
 * -ENOTSUP (UDP: no ACKs), and the client's failure. */
H5REC_CLIENT_API int h5rec_client_wait(struct h5rec_client *client, uint64_t seq,
				       int timeout_ms);

/* The socket to poll; -1 while there is none (waiting to reconnect). It
 * changes when the client reconnects: ask again after every
 * h5rec_client_process(). */
H5REC_CLIENT_API int h5rec_client_fd(const struct h5rec_client *client);

/* What to poll the fd for: POLLIN, and POLLOUT while there are bytes to
 * send or a connect in progress (poll.h values). */
H5REC_CLIENT_API int h5rec_client_events(const struct h5rec_client *client);

/* Milliseconds until h5rec_client_process() has timed work to do (the next
 * reconnect attempt, giving up on a connect pending for 10 s, at most 1 ms
 * while encoder threads hold frames); -1: none, wait for the fd only. */
H5REC_CLIENT_API int h5rec_client_timeout(const struct h5rec_client *client);

/* Make progress without waiting: finish a connect, read ACKs, write queued
 * frames, notice a closed connection and reconnect when its time has come.
 * Returns 0, or the client's failure, after which every call returns it:
 * -ECONNRESET when reconnect_attempts tries in a row brought no progress
 * (the recorder is gone, or refuses a frame: it closes the connection on
 * a frame it cannot take, SPEC §3.1, and the reason is in its log),
 * -EPROTO when the recorder sent something that is not an ACK, DESCRIBE or
 * ERROR, or refused a frame with an ERROR frame (its reason is in
 * h5rec_client_error()). Also what a blocking client does inside its
 * calls. */
H5REC_CLIENT_API int h5rec_client_process(struct h5rec_client *client);

/* Bytes held by the replay buffer (frames not yet acknowledged). */
H5REC_CLIENT_API size_t h5rec_client_buffered(const struct h5rec_client *client);

/* How many times the client has connected again after losing the
 * connection. */
H5REC_CLIENT_API uint64_t h5rec_client_reconnects(const struct h5rec_client *client);

/* Why the last call failed, in words; cleared by a queueing call or
 * h5rec_client_wait() that succeeds. Valid until the next call on the
 * client. */
H5REC_CLIENT_API const char *h5rec_client_error(const struct h5rec_client *client);

#ifdef __cplusplus
}
#endif

#endif
