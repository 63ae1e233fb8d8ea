/* named_course_client.c

   The client of named_course_server.c: finds the server's FIFO by its path
   in DIR, opens it for writing and writes one line per message. Closing it
   gives the server end of file.

   Usage: named_course_client DIR
*/
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>

#include "common.h"
#include "named.h"

int main(int argc, char *argv[])
{
    char path[4096];
    FILE *fifo;

    if (argc != 2) {
        fprintf(stderr, "Usage: %s DIR\n", argv[0]);
        exit(EXIT_FAILURE);
    }
    snprintf(path, sizeof path, "%s/%s", argv[1], FIFO_NAME);

    fifo = fopen(path, "w");
    if (fifo == NULL)
        err_exit("fopen");
    for (size_t i = 0; i < N_MESSAGES; i++) {
        if (fprintf(fifo, "%s\n", messages[i]) < 0)
            err_exit("fprintf");
        printf("client: sent \"%s\"\n", messages[i]);
    }
    if (fclose(fifo) == EOF)
        err_exit("fclose");
    exit(EXIT_SUCCESS);
}
