/* What a reader's epoll registration costs its writer: a stream of 64-byte records over a
 * SOCK_SEQPACKET socket pair, one writer process, the reader (this process) in one of four ways:
 *
 *   plain       blocking read(2)
 *   registered  blocking read(2), the socket also in an epoll set nobody waits on
 *   epoll       recv(MSG_DONTWAIT); on EAGAIN, epoll_wait on a set holding the socket
 *   poll        recv(MSG_DONTWAIT); on EAGAIN, poll(2) on the socket
 *
 * Rounds are interleaved; prints k messages/s (median and best) and system calls per message.
 *
 *   cc -O2 -Wall -o /tmp/epoll-registered docs/measurements/epoll-registered.c
 *   /tmp/epoll-registered [rounds]
 */
#define _GNU_SOURCE
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { MESSAGES = 2000000, SIZE = 64, MODES = 4, MAX_ROUNDS = 31 };
static const char *names[MODES] = {"plain", "registered", "epoll", "poll"};

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

static double run(int mode, double *calls_per_message) {
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) != 0) { perror("socketpair"); exit(1); }
	pid_t writer = fork();
	if (writer == 0) {
		char msg[SIZE];
		memset(msg, 1, sizeof msg);
		close(sv[0]);
		for (long i = 0; i < MESSAGES; i++)
			if (write(sv[1], msg, SIZE) != SIZE) _exit(1);
		_exit(0);
	}
	close(sv[1]);
	int ep = epoll_create1(0);
	struct epoll_event ev = {.events = EPOLLIN};
	if (mode == 1 || mode == 2) epoll_ctl(ep, EPOLL_CTL_ADD, sv[0], &ev);
	char buf[128];
	long calls = 0;
	double start = 0;
	for (long i = 0; i < MESSAGES; i++) {
		if (mode <= 1) {
			calls++;
			if (read(sv[0], buf, sizeof buf) <= 0) { fprintf(stderr, "read\n"); exit(1); }
		} else {
			for (;;) {
				calls++;
				ssize_t n = recv(sv[0], buf, sizeof buf, MSG_DONTWAIT);
				if (n > 0) break;
				if (n == 0) { fprintf(stderr, "eof\n"); exit(1); }
				calls++;
				if (mode == 2) {
					struct epoll_event got;
					epoll_wait(ep, &got, 1, -1);
				} else {
					struct pollfd p = {.fd = sv[0], .events = POLLIN};
					poll(&p, 1, -1);
				}
			}
		}
		if (i == 0) start = now(); /* the writer has started */
	}
	double elapsed = now() - start;
	waitpid(writer, NULL, 0);
	close(ep);
	close(sv[0]);
	*calls_per_message = (double)calls / MESSAGES;
	return (MESSAGES - 1) / elapsed;
}

static int by_value(const void *a, const void *b) {
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv) {
	int rounds = argc > 1 ? atoi(argv[1]) : 5;
	if (rounds < 1 || rounds > MAX_ROUNDS) { fprintf(stderr, "rounds: 1 to %d\n", MAX_ROUNDS); return 2; }
	double rate[MODES][MAX_ROUNDS], calls[MODES] = {0};
	for (int r = 0; r < rounds; r++)
		for (int m = 0; m < MODES; m++) {
			double c;
			rate[m][r] = run(m, &c);
			calls[m] += c / rounds;
		}
	printf("%-11s %14s %10s %14s\n", "reader", "k msg/s med", "best", "calls/msg");
	for (int m = 0; m < MODES; m++) {
		qsort(rate[m], rounds, sizeof(double), by_value);
		printf("%-11s %14.0f %10.0f %14.2f\n", names[m], rate[m][rounds / 2] / 1e3,
		       rate[m][rounds - 1] / 1e3, calls[m]);
	}
	return 0;
}
