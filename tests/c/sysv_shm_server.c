/*
 * The System V shared-memory server of the textbooks (ftok, shmget, shmat; "shm_server.c"),
 * made fit for a test: the path for ftok and the text to publish come from the command line,
 * and the wait for the client is bounded.
 *
 *   sysv_shm_server PATH TEXT
 *
 * Creates a 4096-byte segment with key ftok(PATH, 0x6666) (glibc uses the low 8 bits: 0x66),
 * mode 0666, writes TEXT and a NUL at offset 0, prints "ready KEY", then waits (at most 30 s)
 * for a client to write '*' over the first byte, as the textbook client does. Removes the
 * segment and prints "done" (exit 0), or exits 1 on error or when nobody answered.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/ipc.h>
#include <sys/shm.h>

#define SHMSZ 4096

int main(int argc, char **argv) {
    if (argc != 3 || strlen(argv[2]) >= SHMSZ) {
        fprintf(stderr, "usage: sysv_shm_server PATH TEXT\n");
        return 2;
    }
    key_t key = ftok(argv[1], 0x6666);
    if (key == -1) { perror("ftok"); return 1; }
    int id = shmget(key, SHMSZ, IPC_CREAT | IPC_EXCL | 0666);
    if (id == -1) { perror("shmget"); return 1; }
    volatile char *shm = shmat(id, NULL, 0);
    if (shm == (char *)-1) { perror("shmat"); shmctl(id, IPC_RMID, NULL); return 1; }
    strcpy((char *)shm, argv[2]);
    printf("ready %d\n", (int)key);
    fflush(stdout);

    /* The textbook sleeps a second at a time, forever; 1 ms steps for at most 30 s. */
    int answered = 0;
    for (int i = 0; i < 30000 && !(answered = shm[0] == '*'); i++) usleep(1000);

    shmdt((const void *)shm);
    shmctl(id, IPC_RMID, NULL);
    if (!answered) { fprintf(stderr, "server: no client wrote '*'\n"); return 1; }
    printf("done\n");
    return 0;
}
