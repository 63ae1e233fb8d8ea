/* named_course_server.c

   The course's way for two programs started separately to talk: a FIFO
   (named pipe). The server makes it with mkfifo() in DIR, opens it for
   reading (which waits for a writer), and prints each line a client writes,
   until end of file tells it that the client has closed its end.

   The FIFO is a file: it stays in DIR until someone removes it. This server
   removes it when it ends normally; killed (kill -9), it leaves it behind,
   and a restarted server then fails with "mkfifo: File exists" until
   someone deletes it by hand. Any user who may write in DIR can also
   replace it, or write into it.

   Usage: named_course_server DIR
*/
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "named.h"

int main(int argc, char *argv[])
{
    char path[4096], line[MSG_MAX];
    FILE *fifo;

    if (argc != 2) {
        fprintf(stderr, "Usage: %s DIR\n", argv[0]);
        exit(EXIT_FAILURE);
    }
    snprintf(path, sizeof path, "%s/%s", argv[1], FIFO_NAME);

    if (mkfifo(path, 0600) == -1)
        err_exit("mkfifo");
    fifo = fopen(path, "r");            /* waits until a client opens it */
    if (fifo == NULL)
        err_exit("fopen");

    while (fgets(line, sizeof line, fifo) != NULL)
        printf("server: got \"%.*s\"\n", (int) strcspn(line, "\n"), line);
    if (ferror(fifo))
        err_exit("fgets");
    printf("server: the client is gone\n");

    if (fclose(fifo) == EOF)
        err_exit("fclose");
    if (unlink(path) == -1)             /* only if we get this far */
        err_exit("unlink");
    exit(EXIT_SUCCESS);
}
