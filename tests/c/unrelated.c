/* unrelated.c: the C contract of rawipc between processes that did not fork
   from each other: named endpoints (rawipc_listen, _accept, _accept_admit,
   _connect, _connect_uid, _peer_cred), fd passing (rawipc_msg_send_fds,
   _recv_fds), sealed memory (rawipc_shared_create, _open) and channel
   hand-over (rawipc_chan_give_*, _take_*), checked from C.

   The other programs are this one exec'd again, by the path it was started
   with ("unrelated server NAME",
   "unrelated sleeper NAME"): they share nothing with it but a name. Names
   hold the pid, so parallel runs never meet. Run as root, it also checks the
   security defaults with a real other user (65534).

   Every check prints one line; the program exits 1 if any failed.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rawipc.h"
#include "check.h"

#define NOBODY 65534
#define MESSAGES 1000
#define INCREMENTS 1000

static char name_buf[64];
static const char *self;        /* this program's path, to exec it again */

static const char *name(const char *tag)
{
    snprintf(name_buf, sizeof name_buf, "ctest-%d-%s", (int) getpid(), tag);
    return name_buf;
}

static int fd_count(void)
{
    int n = 0;
    for (int fd = 0; fd < 1024; fd++)
        if (fcntl(fd, F_GETFD) != -1)
            n++;
    return n;
}

static int map_count(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    int n = 0, c;
    if (f == NULL)
        return -1;
    while ((c = getc(f)) != EOF)
        if (c == '\n')
            n++;
    fclose(f);
    return n;
}

/* ---- the other programs ---- */

/* Listens under NAME, says "ready", and serves one client: a message, a
   region with a mutex both increment, a channel whose receiving end it
   hands over. */
static int server(const char *nm)
{
    int l = rawipc_listen(nm), c, memfd;
    char buf[64];
    rawipc_chan tx;
    if (l == -1)
        return 10;
    printf("ready\n");
    fflush(stdout);
    if ((c = rawipc_accept(l)) == -1)
        return 11;
    if (rawipc_msg_recv(c, buf, sizeof buf) != 5 || memcmp(buf, "hello", 5) != 0)
        return 12;
    struct { rawipc_mutex m; long count; } *shared = rawipc_shared_create(4096, &memfd);
    if (shared == NULL)
        return 13;
    if (rawipc_msg_send_fds(c, "region", 6, &memfd, 1) != 6)
        return 14;
    close(memfd);
    for (int i = 0; i < INCREMENTS; i++) {
        if (rawipc_mutex_lock(&shared->m) != 0)
            return 15;
        shared->count++;
        rawipc_mutex_unlock(&shared->m);
    }
    if (rawipc_chan_give_receiver(&tx, c, 64 * 1024) != 0)
        return 16;
    for (int i = 0; i < MESSAGES; i++)
        if (rawipc_chan_send(&tx, &i, sizeof i) != sizeof i)
            return 17;
    if (rawipc_msg_recv(c, buf, sizeof buf) != 4)
        return 18;
    rawipc_mutex_lock(&shared->m);
    if (shared->count != 2 * INCREMENTS)
        return 19;
    rawipc_mutex_unlock(&shared->m);
    rawipc_chan_close(&tx);
    rawipc_shared_free(shared, 4096);
    return 0;
}

static int sleeper(const char *nm)
{
    char b;
    if (rawipc_listen(nm) == -1)
        return 10;
    printf("ready\n");
    fflush(stdout);
    while (read(0, &b, 1) > 0)
        ;
    return 0;
}

/* Execs this program in `role`; returns its pid once it said "ready". */
static pid_t start(const char *role, const char *nm)
{
    int out[2], in[2];
    char line[16] = {0};
    pid_t pid;
    if (pipe(out) == -1 || pipe(in) == -1)
        return -1;
    if ((pid = fork()) == 0) {
        dup2(out[1], 1);
        dup2(in[0], 0);
        execl(self, self, role, nm, (char *) NULL);
        _exit(127);
    }
    close(out[1]);
    close(in[0]);
    /* in[1] stays open (leaked on purpose) so that the sleeper sleeps. */
    if (read(out[0], line, sizeof line - 1) < 5 || strncmp(line, "ready", 5) != 0)
        return -1;
    close(out[0]);
    return pid;
}

static int exited_0(pid_t pid)
{
    int status;
    return waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* ---- the checks ---- */

static void endpoint_bad_input(void)
{
    char longer[RAWIPC_NAME_MAX + 2];
    int l, c, s;
    pid_t pid;
    uid_t uid;

    memset(longer, 'x', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    FAILS(rawipc_listen(NULL), EFAULT, "listen(NULL) -> EFAULT");
    FAILS(rawipc_listen(""), EINVAL, "listen(\"\") -> EINVAL");
    FAILS(rawipc_listen(longer), EINVAL, "listen(name above RAWIPC_NAME_MAX) -> EINVAL");
    FAILS(rawipc_connect(NULL), EFAULT, "connect(NULL) -> EFAULT");
    FAILS(rawipc_connect(longer), EINVAL, "connect(too long) -> EINVAL");
    FAILS(rawipc_connect(name("nobody-here")), ECONNREFUSED, "connect(nobody listens) -> ECONNREFUSED");
    FAILS(rawipc_accept(-1), EBADF, "accept(-1) -> EBADF");
    FAILS(rawipc_accept(0), ENOTSOCK, "accept(stdin) -> ENOTSOCK");

    l = rawipc_listen(name("taken"));
    CHECK(l >= 0, "listen(name)");
    CHECK((fcntl(l, F_GETFD) & FD_CLOEXEC) != 0, "the listener is close-on-exec");
    FAILS(rawipc_listen(name("taken")), EADDRINUSE, "listen(a taken name) -> EADDRINUSE");
    FAILS(rawipc_accept_admit(l, 8, 0, 0), EINVAL, "accept_admit(unknown flag) -> EINVAL");
    c = rawipc_connect(name("taken"));
    CHECK(c >= 0, "connect(name)");
    s = rawipc_accept(l);
    CHECK(s >= 0, "accept() a client of this user");
    CHECK(rawipc_peer_cred(s, &pid, &uid, NULL) == 0 && pid == getpid() && uid == geteuid(),
          "peer_cred gives the client's pid and uid (gid may be NULL)");
    CHECK(rawipc_peer_cred(c, NULL, NULL, NULL) == 0, "peer_cred with every out-parameter NULL");
    CHECK(rawipc_msg_send(c, "hi", 2) == 2, "a message over the connection");
    FAILS(rawipc_peer_cred(l, &pid, NULL, NULL), ENOTCONN, "peer_cred(listener) -> ENOTCONN");
    FAILS(rawipc_peer_cred(0, &pid, NULL, NULL), ENOTSOCK, "peer_cred(stdin) -> ENOTSOCK");
    close(c);
    close(s);
    close(l);
    l = rawipc_listen(name("taken"));
    CHECK(l >= 0, "the name is free once its listener is closed");
    close(l);
}

static void fds_lose_nothing(void)
{
    int sv[2], p[2], got[4] = {-1, -1, -1, -1}, bad = -1;
    size_t n;
    char buf[16];
    int before;

    rawipc_msg_socketpair(sv);
    if (pipe(p) == -1)
        return;
    int three[3] = {p[1], p[1], p[1]};
    CHECK(rawipc_msg_send_fds(sv[0], "abc", 3, three, 3) == 3, "send_fds(3 fds)");
    FAILS(rawipc_msg_send_fds(sv[0], "abc", 3, NULL, 1), EFAULT, "send_fds(fds NULL) -> EFAULT");
    FAILS(rawipc_msg_send_fds(sv[0], "abc", 3, &bad, 1), EBADF, "send_fds(fd -1) -> EBADF");
    FAILS(rawipc_msg_send_fds(sv[0], "", 0, three, 1), EINVAL, "send_fds(empty) -> EINVAL");
    FAILS(rawipc_msg_send_fds(sv[0], "a", 1, three, RAWIPC_MSG_MAX_FDS + 1), EINVAL,
          "send_fds(more than RAWIPC_MSG_MAX_FDS) -> EINVAL");

    before = fd_count();
    n = 2;
    FAILS(rawipc_msg_recv_fds(sv[1], buf, sizeof buf, got, &n), EMSGSIZE,
          "recv_fds(room for 2 of 3 fds) -> EMSGSIZE");
    CHECK(n == 3, "... and *nfds says it carries 3");
    CHECK(fd_count() == before, "... and no fd is left open by the attempt");
    FAILS(rawipc_msg_recv(sv[1], buf, sizeof buf), EMSGSIZE,
          "a plain rawipc_msg_recv of a message with fds -> EMSGSIZE");
    FAILS(rawipc_msg_size(sv[1]), EMSGSIZE, "rawipc_msg_size of a message with fds -> EMSGSIZE");
    CHECK(fd_count() == before, "... and neither installs nor closes an fd");
    n = 3;
    FAILS(rawipc_msg_recv_fds(sv[1], buf, 2, got, &n), EMSGSIZE, "recv_fds(2-byte buffer) -> EMSGSIZE");
    FAILS(rawipc_msg_recv_fds(sv[1], buf, sizeof buf, got, NULL), EFAULT, "recv_fds(nfds NULL) -> EFAULT");
    n = 3;
    FAILS(rawipc_msg_recv_fds(sv[1], buf, sizeof buf, NULL, &n), EFAULT, "recv_fds(fds NULL) -> EFAULT");
    n = 4;
    CHECK(rawipc_msg_recv_fds(sv[1], buf, sizeof buf, got, &n) == 3 && n == 3,
          "recv_fds with room: the message and all 3 fds");
    CHECK((fcntl(got[0], F_GETFD) & FD_CLOEXEC) != 0, "received fds are close-on-exec");
    CHECK(write(got[2], "z", 1) == 1 && read(p[0], buf, 1) == 1 && buf[0] == 'z',
          "a received fd is the same pipe");
    for (int i = 0; i < 3; i++)
        close(got[i]);
    close(sv[0]);
    n = 4;
    CHECK(rawipc_msg_recv_fds(sv[1], buf, sizeof buf, got, &n) == 0 && n == 0,
          "recv_fds after the peer is gone: 0 and no fd");
    close(sv[1]);
    close(p[0]);
    close(p[1]);
}

static void sealed_memory(void)
{
    int fd = -1, p[2];
    size_t size = 0;
    char *a, *b;

    FAILS(rawipc_shared_create(4096, NULL), EFAULT, "shared_create(fd NULL) -> EFAULT");
    FAILS(rawipc_shared_create(0, &fd), EINVAL, "shared_create(0) -> EINVAL");
    a = rawipc_shared_create(10000, &fd);
    CHECK(a != NULL && fd >= 0, "shared_create(10000)");
    CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0, "its fd is close-on-exec");
    CHECK(fcntl(fd, F_GET_SEALS) == (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
          "sealed against shrinking, growing and more seals");
    CHECK(ftruncate(fd, 0) == -1 && errno == EPERM, "nobody can shrink it");
    b = rawipc_shared_open(fd, &size);
    CHECK(b != NULL && size == 10000, "shared_open maps it, its size from the memfd");
    a[9999] = 42;
    CHECK(b[9999] == 42, "the same memory");
    FAILS(rawipc_shared_open(fd, NULL), EFAULT, "shared_open(size NULL) -> EFAULT");
    rawipc_shared_free(b, size);
    rawipc_shared_free(a, 10000);
    close(fd);

    fd = memfd_create("hostile", MFD_ALLOW_SEALING);
    CHECK(fd >= 0 && ftruncate(fd, 4096) == 0, "a hostile memfd");
    FAILS(rawipc_shared_open(fd, &size), EPERM, "shared_open(unsealed memfd) -> EPERM");
    fcntl(fd, F_ADD_SEALS, F_SEAL_GROW);
    FAILS(rawipc_shared_open(fd, &size), EPERM, "shared_open(shrinkable memfd) -> EPERM");
    close(fd);
    if (pipe(p) == -1)
        return;
    FAILS(rawipc_shared_open(p[0], &size), EINVAL, "shared_open(a pipe) -> EINVAL");
    FAILS(rawipc_shared_open(-1, &size), EBADF, "shared_open(-1) -> EBADF");
    close(p[0]);
    close(p[1]);
}

/* A program started on its own meets this one by name: a message, a
   mutex in sealed memory, a channel handed over. */
static void separate_programs(void)
{
    const char *nm = name("exchange");
    pid_t srv = start("server", nm);
    int c, memfd, got = -1;
    size_t n = 1, size;
    char buf[64];
    rawipc_chan rx;

    CHECK(srv > 0, "the server program started and listens");
    c = rawipc_connect(nm);
    CHECK(c >= 0, "connect to it by name");
    CHECK(rawipc_msg_send(c, "hello", 5) == 5, "send it a message");
    CHECK(rawipc_msg_recv_fds(c, buf, sizeof buf, &memfd, &n) == 6 && n == 1,
          "receive its region's fd");
    struct { rawipc_mutex m; long count; } *shared = rawipc_shared_open(memfd, &size);
    CHECK(shared != NULL && size == 4096, "map its sealed region");
    close(memfd);
    if (shared == NULL) {
        kill(srv, SIGKILL);
        waitpid(srv, NULL, 0);
        return;
    }
    for (int i = 0; i < INCREMENTS; i++) {
        rawipc_mutex_lock(&shared->m);
        shared->count++;
        rawipc_mutex_unlock(&shared->m);
    }
    CHECK(rawipc_chan_take_receiver(&rx, c) == 0, "take the channel's receiving end");
    int in_order = 1;
    for (int i = 0; i < MESSAGES; i++)
        if (rawipc_chan_recv(&rx, &got, sizeof got) != sizeof got || got != i)
            in_order = 0;
    CHECK(in_order, "every message on the channel, in order");
    CHECK(rawipc_msg_send(c, "done", 4) == 4, "tell it we are done");
    CHECK(exited_0(srv), "the server program succeeded (both counted under the mutex)");
    CHECK(rawipc_chan_recv(&rx, &got, sizeof got) == 0, "its channel then says it is gone");
    rawipc_chan_close(&rx);
    rawipc_shared_free(shared, size);
    close(c);
}

static void restart_at_once(void)
{
    const char *nm = name("restart");
    pid_t srv = start("sleeper", nm);
    int l;
    CHECK(srv > 0, "a server program listens");
    FAILS(rawipc_listen(nm), EADDRINUSE, "its name is taken while it lives");
    kill(srv, SIGKILL);
    waitpid(srv, NULL, 0);
    l = rawipc_listen(nm);
    CHECK(l >= 0, "SIGKILLed, its name is free at once");
    close(l);
}

static void become_nobody(void)
{
    if (setgroups(0, NULL) || setresgid(NOBODY, NOBODY, NOBODY) || setresuid(NOBODY, NOBODY, NOBODY))
        _exit(99);
}

static void other_users(void)
{
    const char *nm = name("users");
    int l = rawipc_listen(nm), s, ready[2];
    pid_t child;
    char b;
    uid_t uid;

    if (geteuid() != 0) {
        printf("ok   (skipped: other users need root)\n");
        close(l);
        return;
    }
    for (int round = 0; round < 2; round++) {
        if ((child = fork()) == 0) {
            become_nobody();
            int c = rawipc_connect_uid(nm, 0);
            char x;
            _exit(c >= 0 && read(c, &x, 1) >= 0 ? 0 : 1);
        }
        if (round == 0) {
            FAILS(rawipc_accept(l), EACCES, "accept refuses a client of another user -> EACCES");
        } else {
            s = rawipc_accept_admit(l, RAWIPC_ADMIT_UID, NOBODY, 0);
            CHECK(s >= 0 && rawipc_peer_cred(s, NULL, &uid, NULL) == 0 && uid == NOBODY,
                  "accept_admit(RAWIPC_ADMIT_UID, 65534) admits it (the listener still usable)");
            close(s);
        }
        CHECK(exited_0(child), "the other user's client saw its connection end");
    }
    close(l);

    /* An impostor of another user takes root's name first. */
    if (pipe(ready) == -1)
        return;
    if ((child = fork()) == 0) {
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
        int len = snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "rawipc/0/%s", nm);
        become_nobody();
        if (bind(fd, (struct sockaddr *) &a, sizeof(sa_family_t) + 1 + len) || listen(fd, 4))
            _exit(1);
        if (write(ready[1], "r", 1) != 1)
            _exit(1);
        pause();
        _exit(0);
    }
    CHECK(read(ready[0], &b, 1) == 1, "an impostor of another user took the name");
    FAILS(rawipc_connect(nm), EACCES, "connect refuses a listener of another user -> EACCES");
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    close(ready[0]);
    close(ready[1]);
}

static void hand_over_cycles_and_deaths(void)
{
    const char *nm = name("cycles");
    int l = rawipc_listen(nm), fds0 = -1, maps0 = -1, ok = 1, c, s;
    rawipc_chan a, b;
    int v = 7, got = 0;
    pid_t child;

    for (int i = 0; i < 1002; i++) {
        if (i == 2) {
            fds0 = fd_count();
            maps0 = map_count();
        }
        c = rawipc_connect(nm);
        s = rawipc_accept(l);
        if (rawipc_chan_give_receiver(&a, s, 4096) || rawipc_chan_take_receiver(&b, c) ||
            rawipc_chan_send(&a, &v, sizeof v) != sizeof v ||
            rawipc_chan_recv(&b, &got, sizeof got) != sizeof got)
            ok = 0;
        rawipc_chan_close(&a);
        rawipc_chan_close(&b);
        close(c);
        close(s);
    }
    CHECK(ok, "1000 connect / hand-over / close cycles");
    CHECK(fd_count() == fds0 && map_count() == maps0, "... with fd and mapping counts unchanged");

    /* A taker killed before it took its end: the giver learns it. */
    if ((child = fork()) == 0) {
        int c2 = rawipc_connect(nm);
        (void) c2;
        pause();
        _exit(0);
    }
    s = rawipc_accept(l);
    CHECK(rawipc_chan_give_receiver(&a, s, 4096) == 0, "give a receiving end to a client");
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    long r = 0;
    for (int i = 0; i < 1000000 && r >= 0; i++)
        r = rawipc_chan_send(&a, &v, sizeof v);
    CHECK(r == -1 && errno == EPIPE, "killed before taking it: sends fail with EPIPE");
    rawipc_chan_close(&a);
    close(s);
    FAILS(rawipc_chan_take_sender(&a, s), EBADF, "take_sender(closed fd) -> EBADF");
    FAILS(rawipc_chan_take_sender(NULL, 0), EINVAL, "take_sender(NULL) -> EINVAL");
    FAILS(rawipc_chan_give_sender(&a, 0, 0), EINVAL, "give_sender(capacity 0) -> EINVAL");
    close(l);
}

/* Every pointer rawipc's own calls take: NULL is an error, never a crash,
   and nothing is written or lost. */
static void null_pointers(void)
{
    int sv[2], fd = -7, p[2];
    size_t n = 0;
    char buf[8];

    FAILS(rawipc_connect_uid(NULL, 0), EFAULT, "connect_uid(NULL) -> EFAULT");
    FAILS(rawipc_chan_give_receiver(NULL, 0, 4096), EINVAL, "give_receiver(NULL) -> EINVAL");
    FAILS(rawipc_chan_give_sender(NULL, 0, 4096), EINVAL, "give_sender(NULL) -> EINVAL");
    FAILS(rawipc_chan_take_receiver(NULL, 0), EINVAL, "take_receiver(NULL) -> EINVAL");
    FAILS(rawipc_shared_create((size_t) -1, &fd), ENOMEM, "shared_create(SIZE_MAX) -> ENOMEM");
    CHECK(fd == -7, "... and *fd is untouched");
    FAILS(rawipc_shared_create(0, &fd), EINVAL, "shared_create(0) -> EINVAL");
    FAILS(rawipc_shared_open(-1, &n), EBADF, "shared_open(-1) -> EBADF");
    if (rawipc_msg_socketpair(sv) != 0 || pipe(p) != 0)
        return;
    FAILS(rawipc_msg_send_fds(sv[0], NULL, 3, p, 1), EFAULT, "send_fds(buf NULL) -> EFAULT");
    FAILS(rawipc_msg_send_fds(sv[0], "x", 1, p, (size_t) -1), EINVAL, "send_fds(nfds SIZE_MAX) -> EINVAL");
    CHECK(rawipc_msg_send_fds(sv[0], "x", 1, NULL, 0) == 1, "send_fds(fds NULL, nfds 0) sends");
    CHECK(rawipc_msg_send_fds(sv[0], "y", 1, p, 1) == 1, "send_fds(one fd)");
    n = 0;
    CHECK(rawipc_msg_recv_fds(sv[1], buf, sizeof buf, NULL, &n) == 1 && n == 0,
          "recv_fds(fds NULL, *nfds 0) of a message without fds");
    n = 1;
    FAILS(rawipc_msg_recv_fds(sv[1], NULL, 8, &fd, &n), EFAULT, "recv_fds(buf NULL) -> EFAULT");
    FAILS(rawipc_msg_recv(sv[1], NULL, 8), EFAULT, "msg_recv(buf NULL) -> EFAULT");
    n = 1;
    CHECK(rawipc_msg_recv_fds(sv[1], buf, sizeof buf, &fd, &n) == 1 && n == 1 && buf[0] == 'y',
          "... the message and its fd are still there");
    close(fd);
    close(sv[0]);
    close(sv[1]);
    close(p[0]);
    close(p[1]);
}

int main(int argc, char **argv)
{
    self = argv[0];
    if (argc == 3 && strcmp(argv[1], "server") == 0)
        return server(argv[2]);
    if (argc == 3 && strcmp(argv[1], "sleeper") == 0)
        return sleeper(argv[2]);
    endpoint_bad_input();
    null_pointers();
    fds_lose_nothing();
    sealed_memory();
    separate_programs();
    restart_at_once();
    other_users();
    hand_over_cycles_and_deaths();
    printf("%d failed\n", failures);
    return failures != 0;
}
