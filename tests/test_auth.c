/* test_auth.c - the handshake between hosts (src/transport/auth.c) and the
 * key file (src/transport/key.c): both sides with the key join, a wrong
 * key is refused on the side that checks it, garbage fails at its first
 * wrong byte, a recorded exchange cannot be played again, and either
 * side's proof is useless as the other's. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "runner.h"
#include "transport/auth.h"
#include "transport/key.h"

static const unsigned char KEY[BH__KEY_LEN] = {1, 2, 3, 4, 5, 6, 7, 8};
static const unsigned char OTHER[BH__KEY_LEN] = {1, 2, 3, 4, 5, 6, 7, 9};

/* Moves what `from` has to send into `to`, `chunk` bytes per feed (0: all
 * at once), as a connection would. Returns to's last answer; *rest gets
 * the bytes it did not read. */
static bh__auth_rc
deliver(bh__auth *from, bh__auth *to, size_t chunk, size_t *rest) {
  unsigned char buf[BH__AUTH_MAX];
  size_t n = from->out_len, at = 0, used;
  bh__auth_rc rc = BH__AUTH_MORE;

  memcpy(buf, from->out, n);
  from->out_len = 0;
  while (at < n && rc == BH__AUTH_MORE) {
    size_t len = chunk == 0 || chunk > n - at ? n - at : chunk;

    rc = bh__auth_feed(to, buf + at, len, &used);
    at += used;
    if (to->out_len > 0 && rc == BH__AUTH_MORE && at < n)
      return BH__AUTH_FAIL; /* it answered before reading all: a bug */
  }
  *rest = n - at;
  return rc;
}

/* A whole handshake between keys qk and wk, chunk bytes per read. */
static int
handshake(const unsigned char *qk, const unsigned char *wk, size_t chunk,
          bh__auth_rc *q_rc, bh__auth_rc *w_rc, bh__auth *q, bh__auth *w) {
  size_t rest;

  ASSERT_INT_EQ(bh__auth_init(q, BH__AUTH_QUEEN, qk), 0);
  ASSERT_INT_EQ(bh__auth_init(w, BH__AUTH_WORKER, wk), 0);
  ASSERT(q->out_len > 0 && w->out_len == 0); /* the queen speaks first */
  ASSERT_INT_EQ(deliver(q, w, chunk, &rest), BH__AUTH_MORE); /* HELLO */
  ASSERT_INT_EQ(rest, 0);
  *q_rc = deliver(w, q, chunk, &rest);                       /* PROOF */
  ASSERT_INT_EQ(rest, 0);
  *w_rc = deliver(q, w, chunk, &rest);              /* ACCEPT or REFUSE */
  ASSERT_INT_EQ(rest, 0);
  return 0;
}

TEST(same_key_joins) {
  size_t chunks[] = {0, 1, 7};
  bh__auth q, w;
  bh__auth_rc qr, wr;

  for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
    ASSERT_INT_EQ(handshake(KEY, KEY, chunks[i], &qr, &wr, &q, &w), 0);
    ASSERT_INT_EQ(qr, BH__AUTH_DONE);
    ASSERT_INT_EQ(wr, BH__AUTH_DONE);
    ASSERT(q.why == NULL && w.why == NULL);
  }
  return 0;
}

/* The queen checks first: a worker without the key learns nothing but a
 * refusal, and says it was refused. */
TEST(wrong_key_is_refused) {
  bh__auth q, w;
  bh__auth_rc qr, wr;

  ASSERT_INT_EQ(handshake(KEY, OTHER, 0, &qr, &wr, &q, &w), 0);
  ASSERT_INT_EQ(qr, BH__AUTH_FAIL);
  ASSERT(strstr(q.why, "does not have the hive's key") != NULL);
  ASSERT_INT_EQ(wr, BH__AUTH_FAIL);
  ASSERT(strstr(w.why, "the queen refused") != NULL);
  return 0;
}

/* A fake queen (she never saw the key) cannot make the worker serve her:
 * her ACCEPT is checked. */
TEST(fake_queen_is_refused) {
  bh__auth q, w;
  size_t rest;
  unsigned char *mac;

  ASSERT_INT_EQ(bh__auth_init(&q, BH__AUTH_QUEEN, KEY), 0);
  ASSERT_INT_EQ(bh__auth_init(&w, BH__AUTH_WORKER, KEY), 0);
  ASSERT_INT_EQ(deliver(&q, &w, 0, &rest), BH__AUTH_MORE);
  w.out_len = 0; /* the fake queen drops the proof and accepts anyway */
  mac = q.out + BH__AUTH_HEAD;
  memcpy(q.out, "BHA1A", BH__AUTH_HEAD);
  memset(mac, 0x5a, BH__AUTH_MAC);
  q.out_len = BH__AUTH_HEAD + BH__AUTH_MAC;
  ASSERT_INT_EQ(deliver(&q, &w, 0, &rest), BH__AUTH_FAIL);
  ASSERT(strstr(w.why, "the queen does not have the hive's key") != NULL);
  return 0;
}

/* A PROOF recorded from a good exchange fails against a new HELLO: the
 * queen's nonce is fresh each time. */
TEST(recorded_proof_is_useless) {
  unsigned char proof[BH__AUTH_MAX];
  size_t plen, rest, used;
  bh__auth q, w, q2;

  ASSERT_INT_EQ(bh__auth_init(&q, BH__AUTH_QUEEN, KEY), 0);
  ASSERT_INT_EQ(bh__auth_init(&w, BH__AUTH_WORKER, KEY), 0);
  ASSERT_INT_EQ(deliver(&q, &w, 0, &rest), BH__AUTH_MORE);
  plen = w.out_len;
  memcpy(proof, w.out, plen);
  ASSERT_INT_EQ(deliver(&w, &q, 0, &rest), BH__AUTH_DONE);
  ASSERT_INT_EQ(bh__auth_init(&q2, BH__AUTH_QUEEN, KEY), 0);
  ASSERT_INT_EQ(bh__auth_feed(&q2, proof, plen, &used), BH__AUTH_FAIL);
  ASSERT(strstr(q2.why, "does not have the hive's key") != NULL);
  ASSERT_INT_EQ(q2.out[BH__AUTH_HEAD - 1], 'R');
  return 0;
}

/* The queen's proof played back as a worker's (a reflection through a
 * second connection) fails: the role strings differ. */
TEST(reflected_proof_is_useless) {
  unsigned char rec[BH__AUTH_MAX];
  bh__auth q, w, victim;
  size_t rest, used;

  /* The strongest case: a genuine ACCEPT made over the victim's own
   * nonce (w is given it), relabelled as a PROOF for the victim. Without
   * the role strings it would be exactly the proof she expects. */
  ASSERT_INT_EQ(bh__auth_init(&victim, BH__AUTH_QUEEN, KEY), 0);
  ASSERT_INT_EQ(bh__auth_init(&q, BH__AUTH_QUEEN, KEY), 0);
  ASSERT_INT_EQ(bh__auth_init(&w, BH__AUTH_WORKER, KEY), 0);
  memcpy(w.mine, victim.mine, BH__AUTH_NONCE); /* as if chosen so */
  ASSERT_INT_EQ(deliver(&q, &w, 0, &rest), BH__AUTH_MORE);
  ASSERT_INT_EQ(deliver(&w, &q, 0, &rest), BH__AUTH_DONE);
  /* q's ACCEPT = HMAC(K, queen role, victim's nonce, q's nonce). */
  memcpy(rec, "BHA1P", BH__AUTH_HEAD);
  memcpy(rec + BH__AUTH_HEAD, q.mine, BH__AUTH_NONCE);
  memcpy(rec + BH__AUTH_HEAD + BH__AUTH_NONCE, q.out + BH__AUTH_HEAD,
         BH__AUTH_MAC);
  ASSERT_INT_EQ(bh__auth_feed(&victim, rec, sizeof(rec), &used),
                BH__AUTH_FAIL);
  return 0;
}

/* Anything but the handshake fails at its first wrong byte, without
 * reading further; the queen refuses, the worker just fails. */
TEST(garbage_fails_at_once) {
  const char *http = "GET / HTTP/1.1\r\n\r\n";
  unsigned char frame[8] = {0, 0, 0, 4, 0x81, 0xa1, 'x', 0};
  bh__auth q, w;
  size_t used;

  ASSERT_INT_EQ(bh__auth_init(&q, BH__AUTH_QUEEN, KEY), 0);
  q.out_len = 0;
  ASSERT_INT_EQ(bh__auth_feed(&q, http, strlen(http), &used),
                BH__AUTH_FAIL);
  ASSERT_INT_EQ(used, 1);
  ASSERT(strstr(q.why, "does not speak beehive's handshake") != NULL);
  ASSERT_INT_EQ(q.out_len, BH__AUTH_HEAD); /* a REFUSE */
  ASSERT_INT_EQ(bh__auth_init(&w, BH__AUTH_WORKER, KEY), 0);
  ASSERT_INT_EQ(bh__auth_feed(&w, frame, sizeof(frame), &used),
                BH__AUTH_FAIL);
  ASSERT_INT_EQ(used, 1);
  ASSERT_INT_EQ(w.out_len, 0);
  /* A right magic with the wrong record for the moment. */
  ASSERT_INT_EQ(bh__auth_init(&q, BH__AUTH_QUEEN, KEY), 0);
  ASSERT_INT_EQ(bh__auth_feed(&q, "BHA1A", 5, &used), BH__AUTH_FAIL);
  ASSERT_INT_EQ(used, 5);
  /* After a failure nothing more is read. */
  ASSERT_INT_EQ(bh__auth_feed(&q, "BHA1P", 5, &used), BH__AUTH_FAIL);
  ASSERT_INT_EQ(used, 0);
  return 0;
}

/* The bytes after ACCEPT are the queen's first frames: the worker reads
 * no further than the handshake. */
TEST(frames_after_the_handshake_are_left) {
  unsigned char buf[BH__AUTH_MAX + 4];
  bh__auth q, w;
  size_t rest, used, n;

  ASSERT_INT_EQ(bh__auth_init(&q, BH__AUTH_QUEEN, KEY), 0);
  ASSERT_INT_EQ(bh__auth_init(&w, BH__AUTH_WORKER, KEY), 0);
  ASSERT_INT_EQ(deliver(&q, &w, 0, &rest), BH__AUTH_MORE);
  ASSERT_INT_EQ(deliver(&w, &q, 0, &rest), BH__AUTH_DONE);
  n = q.out_len;
  memcpy(buf, q.out, n);
  memcpy(buf + n, "\0\0\0\1", 4);
  ASSERT_INT_EQ(bh__auth_feed(&w, buf, n + 4, &used), BH__AUTH_DONE);
  ASSERT_INT_EQ(used, n);
  ASSERT_INT_EQ(bh__auth_feed(&w, buf + n, 4, &used), BH__AUTH_DONE);
  ASSERT_INT_EQ(used, 0);
  bh__auth_clear(&w);
  ASSERT(w.key[0] == 0 && w.key[1] == 0);
  return 0;
}

static char dir[] = "/tmp/bh-test-auth-XXXXXX";

static int
write_mode(const char *path, const char *text, mode_t mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

  if (fd < 0)
    return -1;
  if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
    close(fd);
    return -1;
  }
  return close(fd) == 0 && chmod(path, mode) == 0 ? 0 : -1;
}

TEST(key_files) {
  unsigned char k1[BH__KEY_LEN], k2[BH__KEY_LEN];
  char path[128], why[256];
  const char *hex =
      "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
  struct stat st;

  ASSERT(mkdtemp(dir) != NULL);
  snprintf(path, sizeof(path), "%s/made", dir);
  ASSERT_INT_EQ(bh__key_make(path, k1, why, sizeof(why)), 0);
  ASSERT(stat(path, &st) == 0);
  ASSERT_INT_EQ(st.st_mode & 0777, 0600);
  ASSERT_INT_EQ(st.st_size, 65);
  ASSERT_INT_EQ(bh__key_load(path, k2, why, sizeof(why)), 0);
  ASSERT(memcmp(k1, k2, BH__KEY_LEN) == 0);
  /* Never over an existing file: -EEXIST, so that the caller loads it. */
  ASSERT_INT_EQ(bh__key_make(path, k1, why, sizeof(why)), -EEXIST);
  ASSERT(strstr(why, "File exists") != NULL);
  /* Someone else's file is no key of ours, whatever its mode. */
  if (geteuid() == 0) {
    ASSERT_INT_EQ(chown(path, 65534, 65534), 0);
    ASSERT_INT_EQ(bh__key_load(path, k2, why, sizeof(why)), BH_EINVAL);
    ASSERT(strstr(why, "belongs to uid 65534, not to this user") != NULL);
  }
  ASSERT(unlink(path) == 0);
  /* Written by hand, with or without its newline. */
  snprintf(path, sizeof(path), "%s/hand", dir);
  ASSERT_INT_EQ(write_mode(path, hex, 0600), 0);
  ASSERT_INT_EQ(bh__key_load(path, k2, why, sizeof(why)), 0);
  ASSERT_INT_EQ(k2[0], 0);
  ASSERT_INT_EQ(k2[31], 0x1f);
  /* Readable by others. */
  ASSERT_INT_EQ(chmod(path, 0644), 0);
  ASSERT_INT_EQ(bh__key_load(path, k2, why, sizeof(why)), BH_EINVAL);
  ASSERT(strstr(why, "(mode 0644): chmod 600 ") != NULL);
  /* Short, long, not hex. */
  ASSERT_INT_EQ(write_mode(path, "abcd\n", 0600), 0);
  ASSERT_INT_EQ(bh__key_load(path, k2, why, sizeof(why)), BH_EINVAL);
  ASSERT(strstr(why, "expected 64 hexadecimal digits") != NULL);
  snprintf(why, sizeof(why), "%s0\n", hex);
  ASSERT_INT_EQ(write_mode(path, why, 0600), 0);
  ASSERT_INT_EQ(bh__key_load(path, k2, why, sizeof(why)), BH_EINVAL);
  snprintf(why, sizeof(why), "%.63sg", hex);
  ASSERT_INT_EQ(write_mode(path, why, 0600), 0);
  ASSERT_INT_EQ(bh__key_load(path, k2, why, sizeof(why)), BH_EINVAL);
  ASSERT(strstr(why, "expected 64 hexadecimal digits") != NULL);
  ASSERT(unlink(path) == 0);
  /* Missing, or a directory. */
  ASSERT_INT_EQ(bh__key_load(path, k2, why, sizeof(why)), BH_EINVAL);
  ASSERT(strstr(why, "No such file or directory") != NULL);
  ASSERT_INT_EQ(bh__key_load(dir, k2, why, sizeof(why)), BH_EINVAL);
  ASSERT(strstr(why, "not a regular file") != NULL);
  ASSERT(rmdir(dir) == 0);
  return 0;
}

/* Queens started together on one missing key file: one makes it, the
 * others load it, and none reads it half-written (it appears whole). */
TEST(a_key_file_made_by_many_at_once_is_one_key) {
  char d[] = "/tmp/bh_keyrace_XXXXXX", path[128], why[256];
  unsigned char want[BH__KEY_LEN];
  int round, i, p[2];

  ASSERT(mkdtemp(d) != NULL);
  snprintf(path, sizeof(path), "%s/k", d);
  for (round = 0; round < 40; round++) {
    pid_t pids[4];

    ASSERT_INT_EQ(pipe(p), 0);
    for (i = 0; i < 4; i++)
      if ((pids[i] = fork()) == 0) {
        unsigned char k[BH__KEY_LEN];
        int rc = bh__key_make(path, k, why, sizeof(why));

        if (rc == -EEXIST)
          rc = bh__key_load(path, k, why, sizeof(why));
        if (rc != 0)
          fprintf(stderr, "round %d: %s\n", round, why);
        (void)!write(p[1], k, sizeof(k));
        _exit(rc == 0 ? 0 : 1);
      }
    close(p[1]);
    for (i = 0; i < 4; i++) {
      unsigned char k[BH__KEY_LEN];

      ASSERT_INT_EQ(bh_test_exit_code(pids[i]), 0);
      ASSERT_INT_EQ(read(p[0], k, sizeof(k)), sizeof(k));
      ASSERT_INT_EQ(bh__key_load(path, want, why, sizeof(why)), 0);
      ASSERT(memcmp(k, want, sizeof(k)) == 0);
    }
    close(p[0]);
    ASSERT(unlink(path) == 0);
  }
  ASSERT(rmdir(d) == 0);
  return 0;
}

TEST_MAIN(TEST_ENTRY(same_key_joins), TEST_ENTRY(wrong_key_is_refused),
          TEST_ENTRY(fake_queen_is_refused),
          TEST_ENTRY(recorded_proof_is_useless),
          TEST_ENTRY(reflected_proof_is_useless),
          TEST_ENTRY(garbage_fails_at_once),
          TEST_ENTRY(frames_after_the_handshake_are_left),
          TEST_ENTRY(key_files),
          TEST_ENTRY_T(a_key_file_made_by_many_at_once_is_one_key, 60))
