/* The textbook FIFO server: makes the FIFO, reads whatever clients write with read(2) and
 * copies it to stdout until the last client closes. Usage: fifo_server FIFO */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s FIFO\n", argv[0]);
        return 2;
    }
    if (mkfifo(argv[1], 0600) < 0 && errno != EEXIST) {
        perror("mkfifo");
        return 1;
    }
    int fd = open(argv[1], O_RDONLY); /* blocks until a client opens it for writing */
    if (fd < 0) {
        perror("open");
        return 1;
    }
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        if (write(1, buf, (size_t)n) != n) {
            perror("write");
            return 1;
        }
    }
    if (n < 0) {
        perror("read");
        return 1;
    }
    close(fd);
    return 0;
}
