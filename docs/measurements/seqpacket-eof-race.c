// A receive that does not wait on a SOCK_SEQPACKET socket can report the end of the
// connection while the peer's last record is still queued (see seqpacket-eof-race.md).
//
//   cc -O2 -Wall -o /tmp/seqpacket-eof-race docs/measurements/seqpacket-eof-race.c -lpthread
//   /tmp/seqpacket-eof-race 200000
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { RECORDS = 3 };

static void *send_and_close(void *arg) {
    int fd = *(int *)arg;
    char record[100];
    memset(record, 1, sizeof record);
    for (int i = 0; i < RECORDS; i++)
        if (send(fd, record, sizeof record, MSG_NOSIGNAL) < 0)
            perror("send");
    close(fd);
    return NULL;
}

int main(int argc, char **argv) {
    int trials = argc > 1 ? atoi(argv[1]) : 100000;
    int early_end = 0, found_by_second_look = 0;
    for (int t = 0; t < trials; t++) {
        int fds[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, fds) < 0) {
            perror("socketpair");
            return 1;
        }
        pthread_t sender;
        pthread_create(&sender, NULL, send_and_close, &fds[0]);
        int received = 0;
        char buf[4096];
        for (;;) {
            ssize_t n = recv(fds[1], buf, sizeof buf, MSG_DONTWAIT);
            if (n > 0) {
                received++;
                continue;
            }
            if (n < 0 && errno == EAGAIN)
                continue;
            if (n < 0) {
                perror("recv");
                return 1;
            }
            // End of the connection: were all the records there?
            if (received < RECORDS) {
                early_end++;
                if (recv(fds[1], buf, sizeof buf, MSG_DONTWAIT) > 0)
                    found_by_second_look++;
            }
            break;
        }
        pthread_join(sender, NULL);
        close(fds[1]);
    }
    printf("%d trials: end reported before the last record %d times; "
           "a second receive found the record %d of those times\n",
           trials, early_end, found_by_second_look);
    return 0;
}
