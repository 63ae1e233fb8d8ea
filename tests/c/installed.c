/* installed.c

   A C program as a user of the installed library writes it: <rawipc.h> from
   the include directory and the library from pkg-config, nothing from this
   checkout. tests/install.rs builds it against a `make install` in a
   temporary DESTDIR, once linked with librawipc.so and once statically, and
   runs both.

   It checks that the header and the library it runs with have the same
   version, then does the notes' pipe: the child writes a line and exits,
   the parent reads until end of file and reaps it. Prints "ok VERSION".
*/
#include <rawipc.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

int main(void)
{
    char expected[32];
    snprintf(expected, sizeof expected, "%d.%d.%d", RAWIPC_VERSION_MAJOR,
             RAWIPC_VERSION_MINOR, RAWIPC_VERSION_PATCH);
    if (strcmp(expected, RAWIPC_VERSION_STRING) != 0) {
        printf("RAWIPC_VERSION_STRING is %s, the macros say %s\n", RAWIPC_VERSION_STRING,
               expected);
        return 1;
    }
    if (strcmp(rawipc_version(), RAWIPC_VERSION_STRING) != 0) {
        printf("the header is %s, the library %s\n", RAWIPC_VERSION_STRING, rawipc_version());
        return 1;
    }

    int fds[2];
    if (rawipc_pipe(fds) == -1) {
        perror("rawipc_pipe");
        return 1;
    }
    pid_t pid = rawipc_fork();
    if (pid == -1) {
        perror("rawipc_fork");
        return 1;
    }
    if (pid == 0) {
        rawipc_close(fds[0]);
        const char line[] = "hello from the child\n";
        if (rawipc_write(fds[1], line, sizeof line - 1) != (ssize_t)(sizeof line - 1))
            _Exit(1);
        _Exit(0);
    }
    rawipc_close(fds[1]);
    char buf[64];
    size_t got = 0;
    ssize_t n;
    while ((n = rawipc_read(fds[0], buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)n;
    if (n == -1) {
        perror("rawipc_read");
        return 1;
    }
    buf[got] = '\0';
    int status;
    if (rawipc_waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        printf("the child did not exit with 0\n");
        return 1;
    }
    if (strcmp(buf, "hello from the child\n") != 0) {
        printf("read \"%s\"\n", buf);
        return 1;
    }
    printf("ok %s\n", rawipc_version());
    return 0;
}
