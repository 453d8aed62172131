/* What the frame format costs a raw loop: write(2)/read(2) of N-byte messages on an anonymous
 * pipe and on a FIFO, for N = a message's size and N = the size of its frame (64 -> 69 bytes,
 * 4096 -> 4161, 8192 -> 8257: see framing.rs), and the message's size again with the writer in
 * packet mode (O_DIRECT, framing=packets; up to 4096 bytes, a packet's limit). Rounds are
 * interleaved; prints each loop's median and best msg/s and the ratios of the plain loop's
 * median to the framed and packet loops'.
 *
 *   cc -O2 -Wall -o /tmp/frame-bytes docs/measurements/frame-bytes.c && /tmp/frame-bytes [rounds]
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { MESSAGES = 1000000, MAX_ROUNDS = 31 };

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Messages per second through one pipe (fifo = 0) or FIFO (fifo = 1), one writer process and
 * one reader (this one), each message one write and as many reads as it takes; with packet,
 * the writer's open file is in packet mode. */
static double loop(int fifo, size_t size, int packet) {
	static char buf[8192];
	int fds[2];
	char path[64];
	if (fifo) {
		snprintf(path, sizeof path, "/tmp/frame-bytes.%d", getpid());
		if (mkfifo(path, 0600) != 0) { perror("mkfifo"); exit(1); }
		fds[0] = open(path, O_RDONLY | O_NONBLOCK);
		fds[1] = open(path, O_WRONLY);
		unlink(path);
		fcntl(fds[0], F_SETFL, 0);
	} else if (pipe(fds) != 0) {
		perror("pipe");
		exit(1);
	}
	if (fds[0] < 0 || fds[1] < 0) { perror("open"); exit(1); }
	if (packet && fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_DIRECT) != 0) {
		perror("fcntl O_DIRECT");
		exit(1);
	}
	double start = now();
	pid_t writer = fork();
	if (writer == 0) {
		close(fds[0]);
		for (long i = 0; i < MESSAGES; i++)
			if (write(fds[1], buf, size) != (ssize_t)size) _exit(1);
		_exit(0);
	}
	close(fds[1]);
	long total = (long)MESSAGES * size, got = 0;
	while (got < total) {
		ssize_t n = read(fds[0], buf, size);
		if (n <= 0) { fprintf(stderr, "short read\n"); exit(1); }
		got += n;
	}
	double elapsed = now() - start;
	close(fds[0]);
	waitpid(writer, NULL, 0);
	return MESSAGES / elapsed;
}

static int by_value(const void *a, const void *b) {
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv) {
	int rounds = argc > 1 ? atoi(argv[1]) : 5;
	if (rounds < 1 || rounds > MAX_ROUNDS) { fprintf(stderr, "rounds: 1 to %d\n", MAX_ROUNDS); return 2; }
	static const size_t sizes[][2] = {{64, 69}, {4096, 4161}, {8192, 8257}};
	enum { SIZES = sizeof sizes / sizeof sizes[0], PACKET_MAX = 4096 };
	static const char *kinds[] = {"pipe", "fifo"};
	double rate[2][SIZES][3][MAX_ROUNDS] = {0}; /* kind, size pair, plain/framed/packet, round */
	for (int r = 0; r < rounds; r++)
		for (int k = 0; k < 2; k++)
			for (int s = 0; s < SIZES; s++)
				for (int f = 0; f < 3; f++)
					if (f < 2 || sizes[s][0] <= PACKET_MAX)
						rate[k][s][f][r] = loop(k, sizes[s][f == 1], f == 2);
	printf("%-5s %6s %18s %18s %18s %7s %7s\n", "", "bytes", "plain k msg/s", "framed", "packet",
	       "framed", "packet");
	printf("%-5s %6s %18s %18s %18s %7s %7s\n", "", "", "median / best", "median / best",
	       "median / best", "ratio", "ratio");
	for (int k = 0; k < 2; k++)
		for (int s = 0; s < SIZES; s++) {
			double med[3], best[3];
			for (int f = 0; f < 3; f++) {
				qsort(rate[k][s][f], rounds, sizeof(double), by_value);
				med[f] = rate[k][s][f][rounds / 2];
				best[f] = rate[k][s][f][rounds - 1];
			}
			printf("%-5s %6zu %9.0f / %-6.0f %9.0f / %-6.0f", kinds[k], sizes[s][0],
			       med[0] / 1e3, best[0] / 1e3, med[1] / 1e3, best[1] / 1e3);
			if (sizes[s][0] <= PACKET_MAX)
				printf(" %9.0f / %-6.0f %6.2fx %6.2fx\n", med[2] / 1e3, best[2] / 1e3,
				       med[0] / med[1], med[0] / med[2]);
			else
				printf(" %18s %6.2fx %7s\n", "n/a", med[0] / med[1], "n/a");
		}
	return 0;
}
