/* What one poll(2) on a pipe costs its writer afterwards: a FIFO carries a stream of 64-byte
 * write(2)/read(2) messages, and the reader either never polls it or polls it once (timeout 0)
 * before the stream starts. Since Linux 5.16 the first poll sets the pipe's poll_usage, and
 * from then on every write wakes the readers' wait queue even when the pipe was not empty.
 * The reader may do some work per message (a busy loop of `spin` steps), as a reader with more
 * to do than read keeps the pipe from running empty. Rounds are interleaved; prints each case's
 * median and best msg/s and the writer's CPU time per message (its rusage).
 *
 *   cc -O2 -Wall -o /tmp/pipe-poll-usage docs/measurements/pipe-poll-usage.c
 *   /tmp/pipe-poll-usage [rounds [spin]]
 *   perf record -g /tmp/pipe-poll-usage 1   # and look for _raw_spin_unlock_irqrestore
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { MESSAGES = 1000000, SIZE = 64, MAX_ROUNDS = 31 };

/* Steps of the reader's busy loop after each message. */
static int spin;

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Messages per second; the writer's CPU ns per message in *writer_ns. */
static double stream(int polled, double *writer_ns) {
	static char buf[SIZE];
	char path[64];
	snprintf(path, sizeof path, "/tmp/pipe-poll-usage.%d", getpid());
	if (mkfifo(path, 0600) != 0) { perror("mkfifo"); exit(1); }
	int r = open(path, O_RDONLY | O_NONBLOCK), w = open(path, O_WRONLY);
	unlink(path);
	if (r < 0 || w < 0) { perror("open"); exit(1); }
	fcntl(r, F_SETFL, 0);
	if (polled) {
		struct pollfd p = {.fd = r, .events = POLLIN};
		poll(&p, 1, 0);
	}
	double start = now();
	pid_t writer = fork();
	if (writer == 0) {
		close(r);
		for (long i = 0; i < MESSAGES; i++)
			if (write(w, buf, SIZE) != SIZE) _exit(1);
		_exit(0);
	}
	close(w);
	for (long got = 0; got < (long)MESSAGES * SIZE;) {
		ssize_t n = read(r, buf, SIZE);
		if (n <= 0) { fprintf(stderr, "short read\n"); exit(1); }
		got += n;
		for (volatile int k = 0; k < spin; k++) {
		}
	}
	double elapsed = now() - start;
	close(r);
	struct rusage ru;
	wait4(writer, NULL, 0, &ru);
	double cpu = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
	*writer_ns = cpu * 1e9 / MESSAGES;
	return MESSAGES / elapsed;
}

static int by_value(const void *a, const void *b) {
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv) {
	int rounds = argc > 1 ? atoi(argv[1]) : 7;
	spin = argc > 2 ? atoi(argv[2]) : 0;
	if (rounds < 1 || rounds > MAX_ROUNDS) { fprintf(stderr, "rounds: 1 to %d\n", MAX_ROUNDS); return 2; }
	double rate[2][MAX_ROUNDS], cpu[2][MAX_ROUNDS];
	for (int i = 0; i < rounds; i++)
		for (int polled = 0; polled < 2; polled++)
			rate[polled][i] = stream(polled, &cpu[polled][i]);
	printf("%-12s %24s %26s\n", "reader", "k msg/s median (best)", "writer ns/msg median (min)");
	for (int polled = 0; polled < 2; polled++) {
		qsort(rate[polled], rounds, sizeof(double), by_value);
		qsort(cpu[polled], rounds, sizeof(double), by_value);
		printf("%-12s %14.0f (%6.0f) %18.0f (%5.0f)\n", polled ? "polled once" : "never polls",
		       rate[polled][rounds / 2] / 1e3, rate[polled][rounds - 1] / 1e3,
		       cpu[polled][rounds / 2], cpu[polled][0]);
	}
	return 0;
}
