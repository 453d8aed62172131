/* A child that reads a descriptor it inherited (its number in argv[1]) with read(2) and copies
 * what it gets to stdout until end of stream. Usage: fd_reader FD */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s FD\n", argv[0]);
        return 2;
    }
    int fd = atoi(argv[1]);
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
    return 0;
}
