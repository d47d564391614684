/* key.c - see key.h. */
#include "transport/key.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "base/base.h"

#define HEX_LEN (2 * BH__KEY_LEN)

static int
refuse(char *why, size_t len, int err, const char *fmt, const char *path,
       const char *detail) {
  snprintf(why, len, fmt, path, detail);
  return err;
}

/* The file's text, at most HEX_LEN + 2 bytes of it, NUL-terminated. */
static int
read_text(int fd, const char *path, char *text, size_t cap, char *why,
          size_t len) {
  struct stat st;
  ssize_t n;

  if (fstat(fd, &st) != 0)
    return refuse(why, len, BH_EINVAL, "key file %s: %s", path,
                  strerror(errno));
  if (!S_ISREG(st.st_mode))
    return refuse(why, len, BH_EINVAL, "key file %s: %s", path,
                  "not a regular file");
  if (st.st_uid != geteuid()) {
    snprintf(why, len, "key file %s belongs to uid %u, not to this user "
             "(uid %u): someone else could have made it", path,
             (unsigned)st.st_uid, (unsigned)geteuid());
    return BH_EINVAL;
  }
  if ((st.st_mode & 077) != 0) {
    snprintf(why, len,
             "key file %s can be used by others than its owner (mode %04o): "
             "chmod 600 %s",
             path, (unsigned)(st.st_mode & 07777), path);
    return BH_EINVAL;
  }
  do
    n = read(fd, text, cap - 1);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return refuse(why, len, BH_EINVAL, "key file %s: %s", path,
                  strerror(errno));
  text[n] = '\0';
  return 0;
}

int
bh__key_load(const char *path, unsigned char key[BH__KEY_LEN], char *why,
             size_t len) {
  char text[HEX_LEN + 3];
  size_t got = 0, n;
  int fd, err;

  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return refuse(why, len, BH_EINVAL, "key file %s: %s", path,
                  strerror(errno));
  err = read_text(fd, path, text, sizeof(text), why, len);
  close(fd);
  if (err != 0)
    return err;
  n = strlen(text);
  if (n > HEX_LEN && text[HEX_LEN] == '\n')
    text[HEX_LEN] = '\0', n = HEX_LEN + 1;
  if (n > HEX_LEN + 1 || strlen(text) != HEX_LEN ||
      OPENSSL_hexstr2buf_ex(key, BH__KEY_LEN, &got, text, '\0') != 1 ||
      got != BH__KEY_LEN) {
    OPENSSL_cleanse(text, sizeof(text));
    return refuse(why, len, BH_EINVAL, "key file %s: %s", path,
                  "expected 64 hexadecimal digits (a 256-bit key) and at "
                  "most a newline");
  }
  OPENSSL_cleanse(text, sizeof(text));
  return 0;
}

int
bh__key_make(const char *path, unsigned char key[BH__KEY_LEN], char *why,
             size_t len) {
  char text[HEX_LEN + 2], tmp[PATH_MAX];
  size_t n = 0;
  int fd, err = 0;

  if (RAND_bytes(key, BH__KEY_LEN) != 1 ||
      OPENSSL_buf2hexstr_ex(text, sizeof(text), &n, key, BH__KEY_LEN,
                            '\0') != 1)
    return refuse(why, len, -EIO, "key file %s: %s", path,
                  "no random key could be drawn");
  text[HEX_LEN] = '\n';
  /* Written whole under a name of its own, then linked into place: a
   * process that reads path meanwhile finds no file or the whole key,
   * never a half-written one, and of two that make it at once, one
   * wins and the other gets -EEXIST. mkstemp makes it 0600. */
  if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp))
    return refuse(why, len, BH_EINVAL, "key file %s: %s", path,
                  "the path is too long");
  fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0)
    err = refuse(why, len, -errno, "key file %s: %s", path, strerror(errno));
  else if ((err = bh__write_all(fd, text, HEX_LEN + 1)) != 0)
    refuse(why, len, err, "key file %s: %s", path, strerror(-err));
  if (fd >= 0 && close(fd) != 0 && err == 0)
    err = refuse(why, len, -errno, "key file %s: %s", path, strerror(errno));
  if (err == 0 && link(tmp, path) != 0)
    err = refuse(why, len, -errno, "key file %s: %s", path, strerror(errno));
  if (fd >= 0)
    unlink(tmp);
  OPENSSL_cleanse(text, sizeof(text));
  return err;
}
