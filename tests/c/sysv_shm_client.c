/*
 * The System V shared-memory client of the textbooks ("shm_client.c"): finds the segment of
 * ftok(PATH, 0x6666), prints the NUL-terminated text at its start on one line, then writes '*'
 * over the first byte to tell the server it has read it.
 *
 *   sysv_shm_client PATH
 *
 * Exit 0, or 1 on error (no such segment, text without a NUL).
 */
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: sysv_shm_client PATH\n"); return 2; }
    key_t key = ftok(argv[1], 0x6666);
    if (key == -1) { perror("ftok"); return 1; }
    int id = shmget(key, 0, 0666);
    if (id == -1) { perror("shmget"); return 1; }
    struct shmid_ds ds;
    if (shmctl(id, IPC_STAT, &ds) == -1) { perror("shmctl"); return 1; }
    char *shm = shmat(id, NULL, 0);
    if (shm == (char *)-1) { perror("shmat"); return 1; }
    /* Trust nothing in the segment: the text must end within it. */
    if (memchr(shm, 0, ds.shm_segsz) == NULL) { fprintf(stderr, "client: no NUL\n"); return 1; }
    printf("%s\n", shm);
    fflush(stdout);
    shm[0] = '*';
    shmdt(shm);
    return 0;
}
