/* lastword.c - a worker's last words, on a shared page (lastword.h). */
#include "proc/lastword.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static char *
map(int fd) {
  char *p = mmap(NULL, BH__LASTWORD_SIZE, PROT_READ | PROT_WRITE,
                 MAP_SHARED, fd, 0);

  return p == MAP_FAILED ? NULL : p;
}

char *
bh__lastword_new(int *fd) {
  char *p;

  *fd = memfd_create("beehive-last-words", MFD_CLOEXEC);
  if (*fd < 0)
    return NULL;
  if (ftruncate(*fd, BH__LASTWORD_SIZE) != 0 || (p = map(*fd)) == NULL) {
    close(*fd);
    *fd = -1;
    return NULL;
  }
  return p;
}

char *
bh__lastword_open(void) {
  const char *e = getenv(BH__LASTWORD_ENV);
  int fd = e != NULL ? atoi(e) : -1;
  char *p;

  unsetenv(BH__LASTWORD_ENV); /* not for the worker's own children */
  /* Only a memfd answers F_GET_SEALS: a stray variable must not make the
   * worker write into some file. */
  if (fd <= 2 || fcntl(fd, F_GET_SEALS) < 0)
    return NULL;
  p = map(fd);
  close(fd);
  return p;
}

const char *
bh__lastword_text(char *page) {
  if (page == NULL || page[0] == '\0')
    return NULL;
  page[BH__LASTWORD_SIZE - 1] = '\0'; /* whatever the worker wrote */
  return page;
}

void
bh__lastword_free(char *page) {
  if (page != NULL)
    munmap(page, BH__LASTWORD_SIZE);
}
