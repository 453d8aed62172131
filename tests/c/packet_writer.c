/* A textbook writer of fixed records into a FIFO: one write(2) per record, back to back, with the
 * descriptor in packet mode (O_DIRECT, pipe(7)) so that each write stays a packet that a reader
 * takes alone. Record i has SIZE_i bytes (1 to PIPE_BUF), all 'a' + i % 26. MODE `bytes` leaves
 * packet mode off, as a writer that forgot it would. Usage: packet_writer MODE FIFO SIZE... */
#define _GNU_SOURCE /* O_DIRECT */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3 || (strcmp(argv[1], "packets") != 0 && strcmp(argv[1], "bytes") != 0)) {
        fprintf(stderr, "usage: %s packets|bytes FIFO SIZE...\n", argv[0]);
        return 2;
    }
    int fd = open(argv[2], O_WRONLY); /* blocks until a reader has the FIFO open */
    if (fd < 0) {
        perror("open");
        return 1;
    }
    if (strcmp(argv[1], "packets") == 0) {
        int flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_DIRECT) < 0) {
            perror("fcntl O_DIRECT");
            return 1;
        }
    }
    for (int i = 3; i < argc; i++) {
        char record[PIPE_BUF];
        char *end;
        long size = strtol(argv[i], &end, 10);
        if (*argv[i] == '\0' || *end != '\0' || size < 1 || size > PIPE_BUF) {
            fprintf(stderr, "size %s: not 1 to %d\n", argv[i], PIPE_BUF);
            return 2;
        }
        memset(record, 'a' + (i - 3) % 26, (size_t)size);
        /* Up to PIPE_BUF bytes are written whole or not at all: no short write to resume. */
        if (write(fd, record, (size_t)size) != size) {
            perror("write");
            return 1;
        }
    }
    if (close(fd) < 0) {
        perror("close");
        return 1;
    }
    return 0;
}
