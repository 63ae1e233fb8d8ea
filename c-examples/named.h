/* named.h

   What the two pairs of separately started programs share: the messages a
   client sends its server. named_course_{server,client}.c meet through a
   FIFO made with mkfifo() in a directory, found by its path;
   named_rawipc_{server,client}.c meet through a rawipc name, with nothing
   on the file system. Both servers print the same, and so do both clients.
*/
#ifndef NAMED_H
#define NAMED_H

/* The FIFO's file name in the directory the course programs are given. */
#define FIFO_NAME "demo.fifo"

/* Each message is one line of at most MSG_MAX bytes, newline included. */
#define MSG_MAX 64

static const char *const messages[] = {
    "hello from a program the server did not start",
    "found by name, not inherited",
    "goodbye",
};
#define N_MESSAGES (sizeof messages / sizeof messages[0])

#endif
