/*
 * tcp_sink.c - the baseline for recorder benchmarks: accept one TCP
 * connection on a loopback port, write every byte received to a file, then
 * fsync and close it. What h5recd is compared against: the same bytes over
 * the same loopback, landing durably in a plain file.
 *
 * With WRITEBACK_BYTES, the kernel's writeback of the file is started
 * (sync_file_range, SYNC_FILE_RANGE_WRITE) after every that many bytes, as
 * h5recd does after every 32 MiB of chunks (src/engine/h5w_writeback.c):
 * the same baseline, with the one device the recorder uses to keep the
 * final fsync short and the page cache from filling with dirty pages.
 *
 * usage: tcp_sink PORT FILE [WRITEBACK_BYTES]   (prints "listening" once
 * ready, and the byte count at the end)
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: tcp_sink PORT FILE [WRITEBACK_BYTES]\n");
		return 2;
	}
	unsigned long long writeback = argc == 4 ? strtoull(argv[3], NULL, 10) : 0, due = 0;
	int server = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct sockaddr_in addr = {.sin_family = AF_INET,
				   .sin_port = htons((uint16_t)atoi(argv[1])),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(server, (struct sockaddr *)&addr, sizeof(addr)) || listen(server, 1)) {
		perror("tcp_sink: bind");
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	int conn = accept(server, NULL, NULL);
	int out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (conn < 0 || out < 0) {
		perror("tcp_sink");
		return 1;
	}
	static char buf[1 << 20];
	unsigned long long total = 0;
	ssize_t n;
	while ((n = read(conn, buf, sizeof(buf))) > 0) {
		for (ssize_t done = 0; done < n;) {
			ssize_t w = write(out, buf + done, (size_t)(n - done));
			if (w < 0) {
				perror("tcp_sink: write");
				return 1;
			}
			done += w;
		}
		total += (unsigned long long)n;
		due += (unsigned long long)n;
		if (writeback && due >= writeback) {
			sync_file_range(out, 0, 0, SYNC_FILE_RANGE_WRITE);
			due = 0;
		}
	}
	struct stat st;
	if ((fstat(out, &st) == 0 && S_ISREG(st.st_mode) && fsync(out)) || close(out)) {
		perror("tcp_sink: fsync");
		return 1;
	}
	close(conn);
	close(server);
	printf("%llu\n", total);
	return 0;
}
