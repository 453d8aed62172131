/* The textbook pipe + fork + exec parent: runs COMMAND with a pipe as its stdin, writes TEXT
 * into the pipe, closes it and exits with the child's status. Usage: pipe_parent TEXT COMMAND... */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s TEXT COMMAND...\n", argv[0]);
        return 2;
    }
    int p[2];
    if (pipe(p) < 0) {
        perror("pipe");
        return 1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        dup2(p[0], 0);
        close(p[0]);
        close(p[1]);
        execvp(argv[2], argv + 2);
        perror("execvp");
        _exit(127);
    }
    close(p[0]);
    size_t len = strlen(argv[1]);
    if (write(p[1], argv[1], len) != (ssize_t)len) {
        perror("write");
        return 1;
    }
    close(p[1]); /* the child sees end of stream */
    int status;
    if (waitpid(pid, &status, 0) < 0) {
        perror("waitpid");
        return 1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}
