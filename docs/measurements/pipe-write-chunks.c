/* Whether a large message goes through a pipe faster written at once or in pieces: a writer
 * process sends each message as one write(2), or as writes of at most 4, 8 or 16 KiB; the
 * reader read(2)s up to one message a call, as our receiver does. Sizes are a message and its
 * frame (payload + 65 bytes, see framing.rs); the pipe is sized as our transport sizes it (the
 * frame; at least the default 64 KiB, at most fs.pipe-max-size's default 1 MiB). Rounds are
 * interleaved; prints each loop's median and best messages/s and the ratio of the plain
 * one-write loop's median to the loop's median.
 *
 *   cc -O2 -Wall -o /tmp/pipe-write-chunks docs/measurements/pipe-write-chunks.c
 *   /tmp/pipe-write-chunks [rounds]
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { MAX_ROUNDS = 31, BYTES_PER_LOOP = 256 << 20, FRAME_OVERHEAD = 65, PIPE_MAX = 1 << 20 };

static char buf[2 << 20] __attribute__((aligned(4096)));

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Messages per second of `size` bytes, each written in writes of at most `chunk` bytes (0: one
 * write), through a pipe of at least `pipe_size` bytes. */
static double loop(size_t size, size_t chunk, size_t pipe_size) {
	long messages = BYTES_PER_LOOP / size;
	if (messages > 500000) messages = 500000;
	int fds[2];
	if (pipe(fds) != 0) { perror("pipe"); exit(1); }
	if (pipe_size > PIPE_MAX) pipe_size = PIPE_MAX;
	if (pipe_size > 65536 && fcntl(fds[1], F_SETPIPE_SZ, (int)pipe_size) < 0) {
		perror("F_SETPIPE_SZ");
		exit(1);
	}
	double start = now();
	pid_t writer = fork();
	if (writer == 0) {
		close(fds[0]);
		for (long i = 0; i < messages; i++)
			for (size_t off = 0; off < size;) {
				size_t n = chunk && size - off > chunk ? chunk : size - off;
				ssize_t w = write(fds[1], buf + off, n);
				if (w <= 0) _exit(1);
				off += w;
			}
		_exit(0);
	}
	close(fds[1]);
	long total = messages * (long)size, got = 0;
	char *dst = buf + (1 << 20);
	while (got < total) {
		ssize_t n = read(fds[0], dst, size);
		if (n <= 0) { fprintf(stderr, "short read\n"); exit(1); }
		got += n;
	}
	double elapsed = now() - start;
	close(fds[0]);
	waitpid(writer, NULL, 0);
	return messages / elapsed;
}

static int by_value(const void *a, const void *b) {
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv) {
	int rounds = argc > 1 ? atoi(argv[1]) : 5;
	if (rounds < 1 || rounds > MAX_ROUNDS) { fprintf(stderr, "rounds: 1 to %d\n", MAX_ROUNDS); return 2; }
	static const size_t payloads[] = {8192, 16384, 65536, 1048576};
	enum { SIZES = sizeof payloads / sizeof payloads[0] };
	/* plain message one write; frame one write; frame in 4, 8, 16 KiB writes */
	static const char *loops[] = {"message, one write", "frame, one write", "frame, 4 KiB writes",
				      "frame, 8 KiB writes", "frame, 16 KiB writes"};
	static const size_t chunks[] = {0, 0, 4096, 8192, 16384};
	enum { LOOPS = sizeof chunks / sizeof chunks[0] };
	static double rate[SIZES][LOOPS][MAX_ROUNDS];
	for (int r = 0; r < rounds; r++)
		for (int s = 0; s < SIZES; s++)
			for (int l = 0; l < LOOPS; l++) {
				size_t frame = payloads[s] + FRAME_OVERHEAD;
				rate[s][l][r] = loop(l == 0 ? payloads[s] : frame, chunks[l], frame);
			}
	printf("%8s  %-22s %22s %8s\n", "payload", "loop", "k msg/s median / best", "ratio");
	for (int s = 0; s < SIZES; s++) {
		double plain = 0;
		for (int l = 0; l < LOOPS; l++) {
			qsort(rate[s][l], rounds, sizeof(double), by_value);
			double med = rate[s][l][rounds / 2], best = rate[s][l][rounds - 1];
			if (l == 0) plain = med;
			printf("%8zu  %-22s %10.2f / %-9.2f %7.2fx\n", payloads[s], loops[l], med / 1e3,
			       best / 1e3, plain / med);
		}
	}
	return 0;
}
