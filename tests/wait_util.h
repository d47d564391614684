/* wait_util.h - waiting for what a program under test writes, without
 * sleeping (test_predict.c, test_mpi.c). */
#ifndef BH_TEST_WAIT_UTIL_H
#define BH_TEST_WAIT_UTIL_H

#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

/* Waits until the file at path holds `size` bytes: inotify events on its
 * directory wake the wait. -1 if the process behind pidfd ends first. */
static int
wait_size(const char *dir, const char *path, off_t size, int pidfd) {
  int in = inotify_init1(IN_CLOEXEC), rc = -1;
  char events[4096];
  struct stat st;

  if (in < 0 || inotify_add_watch(in, dir, IN_MODIFY | IN_CREATE) < 0)
    goto out;
  for (;;) {
    struct pollfd p[2] = {{in, POLLIN, 0}, {pidfd, POLLIN, 0}};

    if (stat(path, &st) == 0 && st.st_size >= size) {
      rc = 0;
      break;
    }
    if (poll(p, 2, -1) < 0 || (p[1].revents & POLLIN))
      break;
    if (read(in, events, sizeof(events)) < 0)
      break;
  }
out:
  if (in >= 0)
    close(in);
  return rc;
}

#endif
