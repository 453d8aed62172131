/* The textbook FIFO client: writes each argument as a line into the FIFO the server made.
 * Usage: fifo_client FIFO LINE... */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s FIFO LINE...\n", argv[0]);
        return 2;
    }
    int fd = open(argv[1], O_WRONLY); /* blocks until the server opens it for reading */
    if (fd < 0) {
        perror("open");
        return 1;
    }
    for (int i = 2; i < argc; i++) {
        char line[4096];
        int n = snprintf(line, sizeof line, "%s\n", argv[i]);
        if (n < 0 || n >= (int)sizeof line || write(fd, line, (size_t)n) != n) {
            perror("write");
            return 1;
        }
    }
    close(fd);
    return 0;
}
