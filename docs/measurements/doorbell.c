/*
 * doorbell.c: round-trip cost of waking a sleeping peer process, for the
 * candidate readiness doorbells of a shared-memory ring.
 *
 * Two processes (fork) ping-pong: A rings B, B (asleep) wakes and rings A,
 * A sleeps until woken. Every sleeper except the futex baseline sleeps the
 * way an event loop does: in epoll_wait on a descriptor.
 *
 *   futex        FUTEX_WAIT / FUTEX_WAKE on a word in a MAP_SHARED mapping
 *   unix-dgram   abstract autobind AF_UNIX datagram socket per side,
 *                addresses exchanged through the shared mapping;
 *                wake = sendto 1 byte, sleep = epoll_wait + recv until EAGAIN
 *   fifo         one FIFO per direction in /dev/shm, opened O_RDWR|O_NONBLOCK
 *                by both; wake = write 1 byte, sleep = epoll_wait + read
 *   eventfd      inherited through fork (reference only: unrelated processes
 *                cannot share one without SCM_RIGHTS or pidfd_getfd)
 *   unix-nested  unix-dgram, the sleeper's socket in an inner epoll that is
 *                itself registered in an outer epoll (an endpoint's epoll fd
 *                inside tokio's)
 *   uring-futex  io_uring IORING_OP_FUTEX_WAIT (6.7+) on the shared word,
 *                sleeper in epoll_wait on the ring fd; waker = FUTEX_WAKE
 *
 * Rounds are interleaved (ABCDEF ABCDEF ...) because the scheduler moves the
 * pair between "one CPU" and "two CPUs". Every round trip is classed by
 * placement (sched_getcpu of both sides) and, on two CPUs, by whether both
 * sides really slept (their voluntary context-switch counts rose; read off
 * the timed path); a table is printed per class and one for everything, each
 * row also as a ratio to the futex row of the same class in the same run.
 * Then the cost to the waker of one wake when nobody sleeps.
 *
 * Build: cc -O2 -Wall -o /tmp/doorbell docs/measurements/doorbell.c
 * Run:   /tmp/doorbell [-n trips] [-r rounds] [-w warmup] [-p free|same|split] [-v]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <linux/futex.h>
#include <linux/io_uring.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXROUNDS 32

static void die(const char *what)
{
    fprintf(stderr, "doorbell: %s: %s\n", what, strerror(errno));
    _exit(2);
}

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static long futex(uint32_t *w, int op, uint32_t val)
{
    return syscall(SYS_futex, w, op, val, NULL, NULL, 0);
}

/* ---------------------------------------------------------------- shared */

struct shared {
    uint32_t word[2] __attribute__((aligned(64))); /* futex doorbells, one per side */
    uint32_t bar __attribute__((aligned(64)));     /* start barrier */
    int fail;
    int cpu_a __attribute__((aligned(64)));        /* A's CPU when it last woke */
    struct sockaddr_un addr[2] __attribute__((aligned(64)));
    socklen_t addrlen[2];
    long b_vcsw, b_ivcsw, b_eintr;
};
static struct shared *S;

static void barrier(void)
{
    uint32_t g = __atomic_add_fetch(&S->bar, 1, __ATOMIC_SEQ_CST);
    uint32_t target = (g + 1) & ~1u, v;
    while ((v = __atomic_load_n(&S->bar, __ATOMIC_SEQ_CST)) < target)
        futex(&S->bar, FUTEX_WAIT, v);
    futex(&S->bar, FUTEX_WAKE, INT_MAX);
}

/* ------------------------------------------------------- per-process state */

static int ep = -1, ep_inner = -1, sock = -1, fifo_rd = -1, fifo_wr = -1;
static int efd[2] = {-1, -1};
static uint32_t seen;   /* last value of my futex word */
static long eintr;      /* epoll_wait EINTRs (io_uring task work) */
static char fifo_path[2][64];

static void ep_add(int epfd, int fd)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        die("epoll_ctl");
}

static void ep_sleep(int epfd)
{
    struct epoll_event ev;
    for (;;) {
        int n = epoll_wait(epfd, &ev, 1, -1);
        if (n > 0)
            return;
        if (n < 0 && errno == EINTR) {
            eintr++;
            continue;
        }
        die("epoll_wait");
    }
}

/* ----------------------------------------------------------------- futex */

static int futex_setup(int side)
{
    seen = __atomic_load_n(&S->word[side], __ATOMIC_SEQ_CST);
    return 0;
}
static void futex_signal(int side)
{
    __atomic_add_fetch(&S->word[1 - side], 1, __ATOMIC_SEQ_CST);
    futex(&S->word[1 - side], FUTEX_WAKE, 1);
}
static void futex_wait(int side)
{
    uint32_t v;
    while ((v = __atomic_load_n(&S->word[side], __ATOMIC_SEQ_CST)) == seen)
        futex(&S->word[side], FUTEX_WAIT, seen);
    seen = v;
}

/* ------------------------------------------------------------ unix dgram */

static int unix_open(int side)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (sock < 0)
        return -1;
    /* autobind: the kernel picks a free abstract name ("\0" + 5 hex digits) */
    if (bind(sock, (struct sockaddr *)&a, sizeof(sa_family_t)) < 0)
        return -1;
    S->addrlen[side] = sizeof(S->addr[side]);
    if (getsockname(sock, (struct sockaddr *)&S->addr[side], &S->addrlen[side]) < 0)
        return -1;
    return 0;
}
static int unix_setup(int side)
{
    if (unix_open(side) < 0 || (ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        return -1;
    ep_add(ep, sock);
    return 0;
}
static int unix_nested_setup(int side)
{
    if (unix_open(side) < 0 || (ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
        (ep_inner = epoll_create1(EPOLL_CLOEXEC)) < 0)
        return -1;
    ep_add(ep_inner, sock);
    ep_add(ep, ep_inner);
    return 0;
}
static void unix_signal(int side)
{
    char b = 1;
    if (sendto(sock, &b, 1, MSG_DONTWAIT, (struct sockaddr *)&S->addr[1 - side],
               S->addrlen[1 - side]) != 1)
        die("sendto");
}
static void unix_drain(void)
{
    char buf[64];
    while (recv(sock, buf, sizeof buf, MSG_DONTWAIT) >= 0)
        ;
    if (errno != EAGAIN)
        die("recv");
}
static void unix_wait(int side)
{
    ep_sleep(ep);
    unix_drain();
}
static void unix_nested_wait(int side)
{
    struct epoll_event ev;
    ep_sleep(ep);                          /* the outer loop sees the endpoint's epoll fd */
    if (epoll_wait(ep_inner, &ev, 1, 0) != 1) /* the endpoint polls its own, no wait */
        die("inner epoll_wait");
    unix_drain();
}

/* ------------------------------------------------------------------ fifo */

static int fifo_pre(void)
{
    for (int i = 0; i < 2; i++) {
        snprintf(fifo_path[i], sizeof fifo_path[i], "/dev/shm/doorbell-%d-%d", (int)getpid(), i);
        unlink(fifo_path[i]);
        if (mkfifo(fifo_path[i], 0600) < 0)
            return -1;
    }
    return 0;
}
static void fifo_post(void)
{
    unlink(fifo_path[0]);
    unlink(fifo_path[1]);
}
static int fifo_setup(int side)
{
    /* each process opens both by name, as unrelated processes would */
    fifo_rd = open(fifo_path[side], O_RDWR | O_NONBLOCK | O_CLOEXEC);
    fifo_wr = open(fifo_path[1 - side], O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fifo_rd < 0 || fifo_wr < 0 || (ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        return -1;
    ep_add(ep, fifo_rd);
    return 0;
}
static void fifo_signal(int side)
{
    char b = 1;
    if (write(fifo_wr, &b, 1) != 1)
        die("fifo write");
}
static void fifo_wait(int side)
{
    char buf[64];
    ep_sleep(ep);
    /* a short read empties a pipe: no second read needed */
    if (read(fifo_rd, buf, sizeof buf) <= 0)
        die("fifo read");
}

/* --------------------------------------------------------------- eventfd */

static int efd_pre(void)
{
    efd[0] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    efd[1] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return efd[0] < 0 || efd[1] < 0 ? -1 : 0;
}
static void efd_post(void)
{
    close(efd[0]);
    close(efd[1]);
}
static int efd_setup(int side)
{
    if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        return -1;
    ep_add(ep, efd[side]);
    return 0;
}
static void efd_signal(int side)
{
    uint64_t one = 1;
    if (write(efd[1 - side], &one, 8) != 8)
        die("eventfd write");
}
static void efd_wait(int side)
{
    uint64_t v;
    ep_sleep(ep);
    if (read(efd[side], &v, 8) != 8) /* one read takes the whole count */
        die("eventfd read");
}

/* --------------------------------------------------------- io_uring futex */

/* Own SQE layout and constants: the installed headers may predate 6.7. */
struct sqe {
    uint8_t opcode, flags;
    uint16_t ioprio;
    int32_t fd;        /* FUTEX_WAIT: futex2 flags */
    uint64_t addr2;    /* FUTEX_WAIT: expected value */
    uint64_t addr;     /* FUTEX_WAIT: futex address */
    uint32_t len;
    uint32_t op_flags; /* futex_flags: must be 0 */
    uint64_t user_data;
    uint16_t buf_index, personality;
    int32_t file_index;
    uint64_t addr3;    /* FUTEX_WAIT: mask */
    uint64_t pad;
};
_Static_assert(sizeof(struct sqe) == 64, "sqe layout");
#define OP_FUTEX_WAIT 51
#define FUTEX2_SIZE_U32_ 0x02 /* no FUTEX2_PRIVATE: the word is in a shared mapping */

struct ring {
    int fd;
    uint32_t *sq_head, *sq_tail, *sq_mask, *sq_array;
    uint32_t *cq_head, *cq_tail, *cq_mask;
    struct io_uring_cqe *cqes;
    struct sqe *sqes;
};
static struct ring R;
static int armed;

static int ring_open(struct ring *r)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    r->fd = (int)syscall(__NR_io_uring_setup, 8, &p);
    if (r->fd < 0)
        return -1;
    size_t sq_sz = p.sq_off.array + p.sq_entries * sizeof(uint32_t);
    size_t cq_sz = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    if (p.features & IORING_FEAT_SINGLE_MMAP)
        sq_sz = cq_sz = sq_sz > cq_sz ? sq_sz : cq_sz;
    char *sq = mmap(NULL, sq_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
                    IORING_OFF_SQ_RING);
    if (sq == MAP_FAILED)
        return -1;
    char *cq = sq;
    if (!(p.features & IORING_FEAT_SINGLE_MMAP)) {
        cq = mmap(NULL, cq_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
                  IORING_OFF_CQ_RING);
        if (cq == MAP_FAILED)
            return -1;
    }
    r->sqes = mmap(NULL, p.sq_entries * sizeof(struct sqe), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
    if (r->sqes == MAP_FAILED)
        return -1;
    r->sq_head = (uint32_t *)(sq + p.sq_off.head);
    r->sq_tail = (uint32_t *)(sq + p.sq_off.tail);
    r->sq_mask = (uint32_t *)(sq + p.sq_off.ring_mask);
    r->sq_array = (uint32_t *)(sq + p.sq_off.array);
    r->cq_head = (uint32_t *)(cq + p.cq_off.head);
    r->cq_tail = (uint32_t *)(cq + p.cq_off.tail);
    r->cq_mask = (uint32_t *)(cq + p.cq_off.ring_mask);
    r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
    return 0;
}

static int ring_futex_wait(struct ring *r, uint32_t *w, uint32_t expect)
{
    uint32_t tail = *r->sq_tail, idx = tail & *r->sq_mask;
    struct sqe *s = &r->sqes[idx];
    memset(s, 0, sizeof *s);
    s->opcode = OP_FUTEX_WAIT;
    s->fd = FUTEX2_SIZE_U32_;
    s->addr = (uint64_t)(uintptr_t)w;
    s->addr2 = expect;
    s->addr3 = 0xffffffffu; /* FUTEX_BITSET_MATCH_ANY */
    s->user_data = 1;
    r->sq_array[idx] = idx;
    __atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
    if (syscall(__NR_io_uring_enter, r->fd, 1, 0, 0, NULL, 0) != 1)
        return -1;
    return 0;
}

/* returns number reaped; *res = result of the last one */
static int ring_reap(struct ring *r, int *res)
{
    int n = 0;
    uint32_t head = *r->cq_head;
    while (head != __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE)) {
        *res = r->cqes[head & *r->cq_mask].res;
        head++;
        n++;
    }
    __atomic_store_n(r->cq_head, head, __ATOMIC_RELEASE);
    return n;
}

/* Does IORING_OP_FUTEX_WAIT work here? Returns a description; *ok set. */
static const char *uring_probe(int *ok)
{
    static char msg[160];
    struct ring r;
    uint32_t w = 7;
    int res = 0;
    *ok = 0;
    if (ring_open(&r) < 0) {
        char v[8] = "?";
        FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
        if (f) {
            if (!fgets(v, sizeof v, f))
                strcpy(v, "?");
            v[strcspn(v, "\n")] = 0;
            fclose(f);
        }
        snprintf(msg, sizeof msg, "io_uring_setup failed: %s (kernel.io_uring_disabled=%s)",
                 strerror(errno), v);
        return msg;
    }
    /* stale expected value: a working FUTEX_WAIT completes at once with -EAGAIN */
    if (ring_futex_wait(&r, &w, 8) < 0) {
        snprintf(msg, sizeof msg, "io_uring_enter failed: %s", strerror(errno));
    } else {
        syscall(__NR_io_uring_enter, r.fd, 0, 1, IORING_ENTER_GETEVENTS, NULL, 0);
        if (ring_reap(&r, &res) != 1)
            snprintf(msg, sizeof msg, "no completion");
        else if (res == -EAGAIN) {
            *ok = 1;
            snprintf(msg, sizeof msg, "works (stale value -> -EAGAIN)");
        } else
            snprintf(msg, sizeof msg, "FUTEX_WAIT rejected: %s (kernel < 6.7?)", strerror(-res));
    }
    close(r.fd);
    return msg;
}

static int uring_setup(int side)
{
    if (ring_open(&R) < 0 || (ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        return -1;
    ep_add(ep, R.fd);
    armed = 0;
    seen = __atomic_load_n(&S->word[side], __ATOMIC_SEQ_CST);
    return 0;
}
static void uring_wait(int side)
{
    int res;
    for (;;) {
        uint32_t v = __atomic_load_n(&S->word[side], __ATOMIC_SEQ_CST);
        if (v != seen) {
            seen = v;
            return;
        }
        if (!armed) {
            if (ring_futex_wait(&R, &S->word[side], seen) < 0)
                die("io_uring_enter");
            armed = 1;
        }
        ep_sleep(ep);
        if (ring_reap(&R, &res) > 0) {
            armed = 0;
            if (res != 0 && res != -EAGAIN) {
                errno = -res;
                die("IORING_OP_FUTEX_WAIT");
            }
        }
    }
}

/* ------------------------------------------------------------ the harness */

struct mech {
    const char *name;
    int (*pre)(void);          /* parent, before fork */
    void (*post)(void);        /* parent, after the child is gone */
    int (*setup)(int side);    /* each process, after fork */
    void (*signal)(int side);  /* wake the peer */
    void (*wait)(int side);    /* sleep until woken */
    int skip;
};

static struct mech mechs[] = {
    {"futex", NULL, NULL, futex_setup, futex_signal, futex_wait, 0},
    {"unix-dgram", NULL, NULL, unix_setup, unix_signal, unix_wait, 0},
    {"fifo", fifo_pre, fifo_post, fifo_setup, fifo_signal, fifo_wait, 0},
    {"eventfd", efd_pre, efd_post, efd_setup, efd_signal, efd_wait, 0},
    {"unix-nested", NULL, NULL, unix_nested_setup, unix_signal, unix_nested_wait, 0},
    {"uring-futex", NULL, NULL, uring_setup, futex_signal, uring_wait, 0},
};
#define NMECH ((int)(sizeof mechs / sizeof mechs[0]))

/* per round trip, what B saw (in a second shared mapping, indexed by trip) */
struct btrip {
    long nvcsw; /* B's voluntary context switches after ringing A back, -1 if not read */
    int cpu;    /* B's CPU when it woke */
};
static struct btrip *BT;

/* per-trip class */
enum { ONE_CPU = 1, TWO_CPU_ASLEEP = 2 /* two CPUs, and each side slept in its wait */ };

struct result {
    uint32_t *rt;      /* round trips, ns */
    uint32_t *wake;    /* A's wake call, ns */
    uint8_t *cls;      /* ONE_CPU, TWO_CPU_ASLEEP, or 0 (two CPUs, one side never slept) */
    double vcsw, ivcsw, eintr;
};

static int trips = 20000, warm = 2000, rounds = 5, verbose;
static int cpu_a = -1, cpu_b = -1; /* pinning */

static void pin(int cpu)
{
    if (cpu < 0)
        return;
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    if (sched_setaffinity(0, sizeof s, &s) < 0)
        die("sched_setaffinity");
}

static void reset_state(void)
{
    ep = ep_inner = sock = fifo_rd = fifo_wr = -1;
    eintr = 0;
}

static void close_state(void)
{
    int fds[] = {ep, ep_inner, sock, fifo_rd, fifo_wr};
    for (unsigned i = 0; i < sizeof fds / sizeof fds[0]; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    if (R.fd > 0) {
        close(R.fd); /* the mappings go with the process */
        R.fd = 0;
    }
}

/* voluntary (slept) and involuntary (preempted) context switches so far */
static long vcsw(long *invol)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    *invol = ru.ru_nivcsw;
    return ru.ru_nvcsw;
}

static int run_one(struct mech *m, struct result *res, uint64_t *t, int *cpu, long *nva)
{
    int total = warm + trips;
    memset(S, 0, sizeof *S);
    if (m->pre && m->pre() < 0)
        die(m->name);
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) { /* B */
        pin(cpu_b);
        reset_state();
        alarm(60);
        if (m->setup(1) < 0)
            S->fail = 1;
        barrier();
        if (S->fail)
            _exit(1);
        long v0 = 0, iv0 = 0, iv1;
        for (int i = 0; i < total; i++) {
            if (i == warm)
                v0 = vcsw(&iv0);
            m->wait(1);
            BT[i].cpu = sched_getcpu();
            m->signal(1);
            /* after ringing: off A's critical path on two CPUs; on one CPU it would be
               on it, and is not needed there */
            BT[i].nvcsw = BT[i].cpu != __atomic_load_n(&S->cpu_a, __ATOMIC_RELAXED) ? vcsw(&iv1)
                                                                                   : -1;
        }
        S->b_vcsw = vcsw(&iv1) - v0;
        S->b_ivcsw = iv1 - iv0;
        S->b_eintr = eintr;
        close_state();
        _exit(0);
    }
    /* A */
    pin(cpu_a);
    reset_state();
    alarm(60);
    if (m->setup(0) < 0)
        S->fail = 1;
    barrier();
    int ok = !S->fail;
    long v0 = 0, iv0 = 0, iv1;
    for (int i = 0; ok && i < total; i++) {
        if (i == warm)
            v0 = vcsw(&iv0);
        t[3 * i] = now_ns();
        m->signal(0);
        t[3 * i + 1] = now_ns();
        m->wait(0);
        t[3 * i + 2] = now_ns();
        cpu[i] = sched_getcpu();
        __atomic_store_n(&S->cpu_a, cpu[i], __ATOMIC_RELAXED);
        nva[i] = vcsw(&iv1); /* outside the timed window */
    }
    long va = vcsw(&iv1) - v0;
    alarm(0);
    int st;
    waitpid(pid, &st, 0);
    close_state();
    if (m->post)
        m->post();
    if (!ok || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return -1;
    for (int i = warm; i < total; i++) {
        uint64_t *ti = &t[3 * i];
        res->rt[i - warm] = (uint32_t)(ti[2] - ti[0]);
        res->wake[i - warm] = (uint32_t)(ti[1] - ti[0]);
        /* a side slept in trip i if its voluntary switch count rose during it */
        int slept = nva[i] > nva[i - 1] && BT[i - 1].nvcsw >= 0 && BT[i].nvcsw > BT[i - 1].nvcsw;
        res->cls[i - warm] = cpu[i] == BT[i].cpu ? ONE_CPU : slept ? TWO_CPU_ASLEEP : 0;
    }
    res->vcsw = (double)(va + S->b_vcsw) / trips;
    res->ivcsw = (double)(iv1 - iv0 + S->b_ivcsw) / trips;
    res->eintr = (double)(eintr + S->b_eintr) / trips;
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static uint32_t median(uint32_t *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_u32);
    return v[n / 2];
}

/* --------------------------------------------- waker cost, nobody sleeping */

static double timer_overhead;

/* median ns of one call of `op`, minus the clock pair's own cost */
#define TIME_OP(label, setup_each, op)                                              \
    do {                                                                            \
        uint32_t *v_ = malloc(sizeof(uint32_t) * 20000);                            \
        uint32_t best_ = UINT32_MAX;                                                \
        for (int r_ = 0; r_ < 5; r_++) {                                            \
            for (int i_ = 0; i_ < 20000; i_++) {                                    \
                setup_each;                                                         \
                uint64_t a_ = now_ns();                                             \
                op;                                                                 \
                v_[i_] = (uint32_t)(now_ns() - a_);                                 \
            }                                                                       \
            uint32_t m_ = median(v_, 20000);                                        \
            if (m_ < best_)                                                         \
                best_ = m_;                                                         \
        }                                                                           \
        printf("  %-58s %6.0f\n", label, best_ - timer_overhead);                   \
        free(v_);                                                                   \
    } while (0)

static void waker_costs(void)
{
    char b = 1, buf[64];
    uint64_t one = 1;
    uint32_t *w = &S->word[0];
    ssize_t rc;

    printf("\nCost to the waker of one wake, nobody asleep (median of 20000, best of 5 rounds, "
           "timer pair subtracted):\n");
    printf("  %-58s %6s\n", "operation", "ns");
    {
        uint32_t v[20000], best = UINT32_MAX;
        for (int r = 0; r < 5; r++) {
            for (int i = 0; i < 20000; i++) {
                uint64_t a = now_ns();
                v[i] = (uint32_t)(now_ns() - a);
            }
            uint32_t m = median(v, 20000);
            if (m < best)
                best = m;
        }
        timer_overhead = best;
        printf("  %-58s %6.0f\n", "(clock_gettime pair, subtracted below)", timer_overhead);
    }

    TIME_OP("futex FUTEX_WAKE, shared word, no waiter", (void)0, futex(w, FUTEX_WAKE, 1));
    TIME_OP("futex FUTEX_WAKE_PRIVATE, no waiter (not usable cross-process)", (void)0,
            futex(w, FUTEX_WAKE_PRIVATE, 1));

    /* receiver: bound abstract socket in an epoll set, nobody in epoll_wait */
    reset_state();
    if (unix_setup(0) < 0)
        die("unix setup");
    int rx = sock;
    struct sockaddr_un to = S->addr[0];
    socklen_t tolen = S->addrlen[0];
    if (unix_open(1) < 0) /* a bound sender, as in the ping-pong */
        die("unix setup");
    int tx = sock;
    int tx_unbound = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    TIME_OP("unix-dgram sendto 1 B, delivered (bound sender)",
            (void)recv(rx, buf, sizeof buf, MSG_DONTWAIT),
            rc = sendto(tx, &b, 1, MSG_DONTWAIT, (struct sockaddr *)&to, tolen));
    TIME_OP("unix-dgram sendto 1 B, delivered (unbound sender)",
            (void)recv(rx, buf, sizeof buf, MSG_DONTWAIT),
            rc = sendto(tx_unbound, &b, 1, MSG_DONTWAIT, (struct sockaddr *)&to, tolen));
    int tx_conn = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (connect(tx_conn, (struct sockaddr *)&to, tolen) < 0)
        die("connect");
    TIME_OP("unix-dgram send 1 B on a connected socket, delivered",
            (void)recv(rx, buf, sizeof buf, MSG_DONTWAIT), rc = send(tx_conn, &b, 1, MSG_DONTWAIT));
    close(tx_conn);
    while (sendto(tx, &b, 1, MSG_DONTWAIT, (struct sockaddr *)&to, tolen) == 1)
        ;
    if (errno != EAGAIN)
        die("sendto fill");
    TIME_OP("unix-dgram sendto 1 B, receiver queue full -> EAGAIN", (void)0,
            rc = sendto(tx, &b, 1, MSG_DONTWAIT, (struct sockaddr *)&to, tolen));
    unix_drain();
    sock = rx;
    unix_drain();
    TIME_OP("unix-dgram recv on empty socket -> EAGAIN (sleeper's drain)", (void)0,
            rc = recv(rx, buf, sizeof buf, MSG_DONTWAIT));
    close(rx);
    close(tx);
    close(tx_unbound);
    close(ep);

    reset_state();
    if (fifo_pre() < 0 || fifo_setup(0) < 0)
        die("fifo setup");
    TIME_OP("fifo write 1 B, delivered", (void)read(fifo_rd, buf, sizeof buf),
            rc = write(fifo_wr, &b, 1));
    while (write(fifo_wr, buf, sizeof buf) > 0)
        ;
    TIME_OP("fifo write 1 B, pipe full -> EAGAIN", (void)0, rc = write(fifo_wr, &b, 1));
    close(fifo_rd);
    close(fifo_wr);
    close(ep);
    fifo_post();

    reset_state();
    if (efd_pre() < 0 || efd_setup(0) < 0)
        die("eventfd setup");
    TIME_OP("eventfd write 8 B (count accumulates)", (void)0, rc = write(efd[0], &one, 8));
    efd_post();
    close(ep);
    (void)rc;
    printf("  (uring-futex wakes with plain FUTEX_WAKE: the futex row)\n");
}

/* ------------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    const char *placement = "free";
    int c;
    while ((c = getopt(argc, argv, "n:r:w:p:v")) != -1) {
        switch (c) {
        case 'n': trips = atoi(optarg); break;
        case 'r': rounds = atoi(optarg); break;
        case 'w': warm = atoi(optarg); break;
        case 'p': placement = optarg; break;
        case 'v': verbose = 1; break;
        default:
            fprintf(stderr, "usage: %s [-n trips] [-r rounds] [-w warmup] "
                            "[-p free|same|split] [-v]\n", argv[0]);
            return 2;
        }
    }
    if (trips < 1 || rounds < 1 || rounds > MAXROUNDS || warm < 1)
        return 2;
    if (strcmp(placement, "free")) {
        cpu_set_t s;
        int cpus[2], k = 0;
        sched_getaffinity(0, sizeof s, &s);
        for (int i = 0; i < CPU_SETSIZE && k < 2; i++)
            if (CPU_ISSET(i, &s))
                cpus[k++] = i;
        if (!strcmp(placement, "same") && k >= 1)
            cpu_a = cpu_b = cpus[0];
        else if (!strcmp(placement, "split") && k >= 2)
            cpu_a = cpus[0], cpu_b = cpus[1];
        else {
            fprintf(stderr, "doorbell: placement %s not possible\n", placement);
            return 2;
        }
    }

    int total = warm + trips;
    S = mmap(NULL, sizeof *S, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    BT = mmap(NULL, sizeof *BT * total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    uint64_t *t = malloc(sizeof(uint64_t) * 3 * total);
    int *cpu = malloc(sizeof(int) * total);
    long *nva = malloc(sizeof(long) * total);
    if (S == MAP_FAILED || BT == MAP_FAILED || !t || !cpu || !nva)
        die("mmap");

    struct utsname u;
    uname(&u);
    printf("doorbell: kernel %s, %ld CPUs online, placement %s, %d round trips x %d "
           "interleaved rounds (+%d warm-up each)\n",
           u.release, sysconf(_SC_NPROCESSORS_ONLN), placement, trips, rounds, warm);
    int uring_ok;
    const char *why = uring_probe(&uring_ok);
    printf("io_uring IORING_OP_FUTEX_WAIT: %s\n", why);
    if (!uring_ok)
        mechs[NMECH - 1].skip = 1;

    static struct result res[NMECH][MAXROUNDS];
    for (int m = 0; m < NMECH; m++)
        for (int r = 0; r < rounds; r++) {
            res[m][r].rt = malloc(sizeof(uint32_t) * trips);
            res[m][r].wake = malloc(sizeof(uint32_t) * trips);
            res[m][r].cls = malloc(trips);
        }

    for (int r = 0; r < rounds; r++)
        for (int m = 0; m < NMECH; m++) {
            if (mechs[m].skip)
                continue;
            if (run_one(&mechs[m], &res[m][r], t, cpu, nva) < 0) {
                printf("%s: failed, skipped from now on\n", mechs[m].name);
                mechs[m].skip = 1;
                continue;
            }
            if (verbose) {
                struct result *x = &res[m][r];
                uint32_t *cp = malloc(sizeof(uint32_t) * trips);
                memcpy(cp, x->rt, sizeof(uint32_t) * trips);
                uint32_t med = median(cp, trips);
                int n1 = 0, n2 = 0;
                for (int i = 0; i < trips; i++)
                    n1 += x->cls[i] == ONE_CPU, n2 += x->cls[i] == TWO_CPU_ASLEEP;
                printf("  round %d %-12s best %6.2f med %6.2f us; one CPU %3.0f%%, two CPUs "
                       "asleep %3.0f%%; slept %.2f preempted %.2f per rt\n",
                       r + 1, mechs[m].name, cp[0] / 1e3, med / 1e3, 100.0 * n1 / trips,
                       100.0 * n2 / trips, x->vcsw, x->ivcsw);
                free(cp);
            }
        }

    /* One table per class of round trip, pooled over the rounds; ratios against the futex
       row of the same class. The last table pools everything, as measured. */
    static const struct {
        int cls;
        const char *title;
    } tables[] = {
        {TWO_CPU_ASLEEP, "A and B on two CPUs, each slept in its wait"},
        {ONE_CPU, "A and B on one CPU (the wakee preempts the waker; one context switch is a "
                  "preemption)"},
        {-1, "all round trips pooled, whatever the placement"},
    };
    size_t n_all = (size_t)trips * rounds;
    uint32_t *rt = malloc(sizeof(uint32_t) * n_all), *wk = malloc(sizeof(uint32_t) * n_all);
    for (unsigned k = 0; k < sizeof tables / sizeof tables[0]; k++) {
        double fbest = 0, fmed = 0;
        printf("\nRound trip A->B->A (us), %s\n", tables[k].title);
        printf("%-12s %6s %7s %7s %7s %7s %9s", "mechanism", "share", "best", "median",
               "best/fx", "med/fx", "wake(ns)");
        if (tables[k].cls < 0)
            printf(" %15s %6s %6s %6s", "round medians", "slept", "prmpt", "EINTR");
        printf("\n");
        for (int m = 0; m < NMECH; m++) {
            if (mechs[m].skip) {
                printf("%-12s skipped\n", mechs[m].name);
                continue;
            }
            size_t n = 0;
            uint32_t rmin = UINT32_MAX, rmax = 0;
            double sl = 0, pr = 0, ei = 0;
            for (int r = 0; r < rounds; r++) {
                struct result *x = &res[m][r];
                for (int i = 0; i < trips; i++)
                    if (tables[k].cls < 0 || x->cls[i] == tables[k].cls) {
                        rt[n] = x->rt[i];
                        wk[n++] = x->wake[i];
                    }
                if (tables[k].cls < 0) {
                    uint32_t rm = median(rt + n - trips, trips);
                    rmin = rm < rmin ? rm : rmin;
                    rmax = rm > rmax ? rm : rmax;
                    sl += x->vcsw / rounds;
                    pr += x->ivcsw / rounds;
                    ei += x->eintr / rounds;
                }
            }
            printf("%-12s %5.0f%%", mechs[m].name, 100.0 * n / n_all);
            if (n < 200) { /* too few to say anything */
                printf(" %7s %7s %7s %7s %9s", "-", "-", "-", "-", "-");
                if (m == 0)
                    fbest = fmed = 0;
            } else {
                double med = median(rt, n) / 1e3, best = rt[0] / 1e3, wmed = median(wk, n);
                if (m == 0)
                    fbest = best, fmed = med;
                printf(" %7.2f %7.2f", best, med);
                if (fbest > 0)
                    printf(" %7.2f %7.2f", best / fbest, med / fmed);
                else
                    printf(" %7s %7s", "-", "-");
                printf(" %9.0f", wmed);
            }
            if (tables[k].cls < 0) {
                char range[32];
                snprintf(range, sizeof range, "%.2f-%.2f", rmin / 1e3, rmax / 1e3);
                printf(" %15s %6.2f %6.2f %6.2f", range, sl, pr, ei);
            }
            printf("\n");
        }
    }
    printf("\nshare = of all measured round trips. wake(ns) = A's ringing call with B asleep "
           "(median;\non one CPU it includes B's whole turn, B preempting A). slept / prmpt = "
           "voluntary /\ninvoluntary context switches of A+B per round trip. EINTR = epoll_wait "
           "returns with\nEINTR per round trip (io_uring completes the futex wait by task work, "
           "which interrupts\nthe sleeper).\n");

    waker_costs();
    return 0;
}
