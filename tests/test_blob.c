/* test_blob.c - large bins as sealed memfds (src/value/blob.c): the table and
 * its references, values that hold blobs, channels that pass them (and
 * refuse hostile ones), and a whole hive echoing one without a copy. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "value/blob.h"
#include "transport/chan_raw.h"
#include "fixture.h"
#include "runner.h"
#include "runtime/turn.h"

#define MIB ((size_t)1 << 20)

/* The inode of the memfd behind a mapped pointer, or 0. */
static ino_t
ino_of(const void *p) {
  bh__blob *b = bh__blob_find(p, 1);
  struct stat st;

  return b != NULL && b->fd >= 0 && fstat(b->fd, &st) == 0 ? st.st_ino : 0;
}

static bool
has(const char *s, const char *part) {
  return s != NULL && strstr(s, part) != NULL;
}

/* ------------------------------------------------------------------------
 * 1. The table, copies and adoption. */

TEST(copy_then_adopt_maps_the_same_bytes) {
  size_t live0 = bh__alloc_live();
  int fds0 = open_fds();
  char err[128] = "";
  bh__blob *c, *b;
  char *data = malloc(MIB);

  ASSERT(data != NULL);
  fill(data, MIB);
  ASSERT_INT_EQ(bh__blob_copy(&c, data, MIB), 0);
  ASSERT(c->map == NULL && c->id == 0 && c->size == MIB);
  ASSERT(!bh__blob_any()); /* a copy to send is not registered */
  ASSERT_INT_EQ(bh__blob_adopt(&b, dup(c->fd), MIB, err, sizeof(err)), 0);
  ASSERT(bh__blob_any());
  ASSERT(holds_pattern(b->map, MIB));
  ASSERT(bh__blob_find(b->map + 100, 1000) == b);
  ASSERT(bh__blob_find(b->map + MIB - 1, 2) == NULL); /* runs past it */
  ASSERT(bh__blob_find(data, 10) == NULL);
  ASSERT(bh__blob_by_id(b->id) == b);
  /* Read-only, sealed: neither side can shrink or write it. */
  ASSERT(ftruncate(c->fd, 10) != 0 && errno == EPERM);
  ASSERT(write(c->fd, "x", 1) < 0 && errno == EPERM);
  bh__blob_ref(b);
  bh__blob_unref(b);
  ASSERT(bh__blob_by_id(b->id) == b); /* one reference left */
  bh__blob_unref(b);
  bh__blob_unref(c);
  ASSERT(!bh__blob_any());
  ASSERT_INT_EQ(open_fds(), fds0);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  free(data);
  return 0;
}

/* Each descriptor a peer could send instead of a sealed memfd is refused
 * with a reason, and closed. */
TEST(adopt_refuses_what_is_not_a_sealed_memfd_long_enough) {
  int fds0 = open_fds();
  char err[128];
  bh__blob *b, *c;
  int p[2], fd;

  ASSERT_INT_EQ(pipe(p), 0);
  close(p[1]);
  ASSERT_INT_EQ(bh__blob_adopt(&b, p[0], 1, err, sizeof(err)), BH_EPROTO);
  ASSERT_STR_EQ(err, "blob descriptor: not a memfd");

  fd = memfd_create("unsealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  ASSERT(fd >= 0 && ftruncate(fd, 4096) == 0);
  ASSERT_INT_EQ(bh__blob_adopt(&b, fd, 1, err, sizeof(err)), BH_EPROTO);
  ASSERT_STR_EQ(err, "blob descriptor: not sealed against shrinking");

  ASSERT_INT_EQ(bh__blob_copy(&c, "0123456789", 10), 0);
  ASSERT_INT_EQ(bh__blob_adopt(&b, dup(c->fd), 11, err, sizeof(err)),
                BH_EPROTO);
  ASSERT_STR_EQ(err, "blob descriptor: shorter than the bin it carries");
  bh__blob_unref(c);
  ASSERT(!bh__blob_any());
  ASSERT_INT_EQ(open_fds(), fds0);
  return 0;
}

TEST(ext_payload_round_trips) {
  bh__blob_loc in = {BH__BLOB_WIRE, 0x0102030405060708ULL, 77,
                     0xfffffffffULL}, out;
  char body[BH__BLOB_EXT_LEN];
  msgpack_object o = {.type = MSGPACK_OBJECT_EXT};

  bh__blob_ext_write(body, &in);
  o.via.ext.type = BH__EXT_BLOB;
  o.via.ext.size = sizeof(body);
  o.via.ext.ptr = body;
  ASSERT(bh__blob_ext_read(&o, &out));
  ASSERT(out.kind == in.kind && out.token == in.token && out.off == in.off &&
         out.len == in.len);
  o.via.ext.size = 24; /* any other length is not ours */
  ASSERT(!bh__blob_ext_read(&o, &out));
  o.via.ext.size = sizeof(body);
  o.via.ext.type = 1;
  ASSERT(!bh__blob_ext_read(&o, &out));
  return 0;
}

/* ------------------------------------------------------------------------
 * 2. Values. */

/* A y# bin inside bh_blob_alloc() memory stays there: the value's bin
 * points into the blob, and the value keeps it alive after bh_blob_free. */
TEST(value_of_a_blob_bin_does_not_copy) {
  size_t live0 = bh__alloc_live();
  int fds0 = open_fds();
  char *mem = bh_blob_alloc(2 * MIB);
  const void *p;
  size_t n;
  bh_value *v, *w;

  ASSERT(mem != NULL);
  ASSERT(mem[0] == 0 && mem[2 * MIB - 1] == 0); /* zeroed */
  fill(mem + 4096, MIB);
  v = bh_value_pack(NULL, "[y# i]", mem + 4096, MIB, 5);
  ASSERT(v != NULL);
  ASSERT_INT_EQ(bh_unpack(bh_value_object(v), NULL, 0, "[y# *]", &p, &n), 0);
  ASSERT(p == mem + 4096 && n == MIB);
  bh_blob_free(mem);
  ASSERT(bh__blob_any());
  ASSERT(holds_pattern(p, n));
  /* A value from its bytes finds the same blob by id. */
  {
    const char *bytes = bh_value_data(v, &n);

    w = bh_value_from_bytes(bytes, n);
  }
  ASSERT(w != NULL);
  ASSERT_INT_EQ(bh_unpack(bh_value_object(w), NULL, 0, "[y# *]", &p, &n), 0);
  ASSERT(p == mem + 4096);
  bh_value_free(v);
  ASSERT(holds_pattern(p, MIB));
  bh_value_free(w);
  ASSERT(!bh__blob_any());
  ASSERT_INT_EQ(open_fds(), fds0);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

/* Below the threshold, or with blobs off, or through the public packer
 * (the caller's own bytes), a bin is an ordinary copy. */
TEST(small_or_disabled_or_public_packs_copy) {
  char *mem = bh_blob_alloc(MIB);
  msgpack_sbuffer sb;
  msgpack_packer pk;
  const void *p;
  size_t n;
  bh_value *v;

  ASSERT(mem != NULL);
  v = bh_value_pack(NULL, "y#", mem, (size_t)1000);
  ASSERT(v != NULL);
  ASSERT_INT_EQ(bh_unpack(bh_value_object(v), NULL, 0, "y#", &p, &n), 0);
  ASSERT(p != mem && n == 1000);
  bh_value_free(v);
  bh_set_blob_threshold(0);
  v = bh_value_pack(NULL, "y#", mem, MIB);
  bh_set_blob_threshold(256 << 10);
  ASSERT(v != NULL);
  ASSERT_INT_EQ(bh_unpack(bh_value_object(v), NULL, 0, "y#", &p, &n), 0);
  ASSERT(p != mem && n == MIB);
  bh_value_free(v);
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  ASSERT_INT_EQ(bh_pack(&pk, "y#", mem, MIB), 0);
  ASSERT(sb.size == MIB + 5 && (unsigned char)sb.data[0] == 0xc6);
  msgpack_sbuffer_destroy(&sb);
  bh_blob_free(mem);
  ASSERT(!bh__blob_any());
  return 0;
}

/* ------------------------------------------------------------------------
 * 3. Channels: two in one loop over a socketpair. */

/* A malloc()ed 1 MiB bin goes out as a blob; the receiver's bin lies in
 * the mapping and stays valid in the value kept from the frame; sent back,
 * it is the same memfd (same inode): no copy on the way back. */
TEST(channel_passes_a_blob_and_sends_it_back_without_copy) {
  size_t live0 = bh__alloc_live();
  int fds0 = open_fds(), sv[2];
  end a = {0}, b = {0};
  char *data = malloc(MIB);
  const msgpack_object *args;
  bh__wire_done d = {.status = BH_SUCCEEDED};
  uv_loop_t loop;
  ino_t ino_b;

  ASSERT(data != NULL);
  fill(data, MIB);
  ASSERT_INT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  ASSERT_INT_EQ(uv_loop_init(&loop), 0);
  ASSERT_INT_EQ(bh__turn_init(&loop), 0);
  ASSERT_INT_EQ(bh__chan_open(&a.c, &loop, sv[0], 0, end_msg, end_err, &a),
                0);
  ASSERT_INT_EQ(bh__chan_open(&b.c, &loop, sv[1], 0, end_msg, end_err, &b),
                0);
  {
    bh_value *call = bh_value_pack(NULL, "[y#]", data, MIB);

    ASSERT(call != NULL);
    ASSERT_INT_EQ(bh__wire_put_task_info(bh__chan_out(a.c),
                                         bh__chan_blobs(a.c), 1 << 16, 1,
                                         "echo", bh_value_object(call), NULL),
                  0);
    bh_value_free(call);
  }
  ASSERT(bh__chan_out(a.c)->len < 200); /* the bytes are not in the frame */
  bh__chan_kick(a.c);
  ASSERT_INT_EQ(run_until(&loop, &b.nmsg, 1), 0);
  ASSERT(b.in_blob && b.len == MIB);
  args = kept_bin(&b);
  ASSERT(args->type == MSGPACK_OBJECT_BIN && args->via.bin.ptr == b.ptr);
  ASSERT(holds_pattern(args->via.bin.ptr, MIB));
  ino_b = ino_of(args->via.bin.ptr);
  ASSERT(ino_b != 0);

  d.returning_value = args;
  ASSERT_INT_EQ(bh__wire_put_task_done(bh__chan_out(b.c), bh__chan_blobs(b.c),
                                       1 << 16, 1, &d),
                0);
  bh__chan_kick(b.c);
  ASSERT_INT_EQ(run_until(&loop, &a.nmsg, 1), 0);
  ASSERT(a.in_blob && a.len == MIB);
  ASSERT(holds_pattern(kept_bin(&a)->via.bin.ptr, MIB));
  ASSERT_INT_EQ(ino_of(kept_bin(&a)->via.bin.ptr), ino_b);
  ASSERT_INT_EQ(a.nerr + b.nerr, 0);

  bh_value_free(a.kept);
  bh_value_free(b.kept);
  ASSERT(!bh__blob_any());
  bh__chan_close(a.c);
  bh__chan_close(b.c);
  bh__turn_close();
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_INT_EQ(uv_loop_close(&loop), 0);
  ASSERT_INT_EQ(open_fds(), fds0);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  free(data);
  return 0;
}

/* 300 blobs in one frame: more descriptors than one sendmsg carries
 * (SCM_MAX_FD, 253); each still arrives before its frame, in order. */
TEST(more_blobs_than_one_message_carries) {
  enum { N = 300, SIZE = 4096 };
  size_t live0 = bh__alloc_live();
  char *data = malloc(SIZE);
  msgpack_sbuffer sb;
  msgpack_packer pk;
  bh_value *call;
  pair p;
  int i;

  ASSERT(data != NULL);
  fill(data, SIZE);
  bh_set_blob_threshold(1024);
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_array(&pk, 2);
  msgpack_pack_array(&pk, N);
  for (i = 0; i < N; i++) {
    msgpack_pack_bin(&pk, SIZE);
    msgpack_pack_bin_body(&pk, data, SIZE);
  }
  msgpack_pack_map(&pk, 0);
  call = bh_value_from_bytes(sb.data, sb.size);
  msgpack_sbuffer_destroy(&sb);
  ASSERT(call != NULL);
  ASSERT_INT_EQ(pair_open(&p, live0), 0);
  ASSERT_INT_EQ(bh__wire_put_task_info(
                    bh__chan_out(p.a.c), bh__chan_blobs(p.a.c), 1 << 20, 1,
                    "many", &bh_value_object(call)->via.array.ptr[0], NULL),
                0);
  bh_value_free(call);
  ASSERT_INT_EQ(bh__chan_blobs(p.a.c)->len, N);
  bh__chan_kick(p.a.c);
  ASSERT_INT_EQ(run_until(&p.loop, &p.b.nmsg, 1), 0);
  bh_set_blob_threshold(256 << 10);
  ASSERT_INT_EQ(p.a.nerr + p.b.nerr, 0);
  ASSERT_INT_EQ(p.b.nbins, N);
  ASSERT_INT_EQ(p.b.nbins_ok, N);
  free(data);
  return pair_close(&p);
}

/* A large frame is read into a buffer of its own, which the message's
 * value takes over; a small one is copied out of the shared buffer. */
TEST(large_frame_value_takes_its_buffer) {
  size_t live0 = bh__alloc_live();
  char *data = malloc(MIB);
  bh_value *call;
  pair p;

  ASSERT(data != NULL);
  fill(data, MIB);
  bh_set_blob_threshold(0);
  call = bh_value_pack(NULL, "[[y#] {}]", data, MIB);
  ASSERT(call != NULL);
  ASSERT_INT_EQ(pair_open(&p, live0), 0);
  ASSERT_INT_EQ(bh__wire_put_task_info(
                    bh__chan_out(p.a.c), bh__chan_blobs(p.a.c), 2 * MIB, 1,
                    "big", &bh_value_object(call)->via.array.ptr[0], NULL),
                0);
  bh_value_free(call);
  bh__chan_kick(p.a.c);
  ASSERT_INT_EQ(run_until(&p.loop, &p.b.nmsg, 1), 0);
  bh_set_blob_threshold(256 << 10);
  ASSERT(p.b.body_kept && p.b.len == MIB && !p.b.in_blob);
  ASSERT(holds_pattern(kept_bin(&p.b)->via.bin.ptr, MIB));
  ASSERT_INT_EQ(bh__wire_put_task_info(bh__chan_out(p.a.c), NULL, 2 * MIB, 2,
                                       "small", NULL, NULL),
                0);
  bh__chan_kick(p.a.c);
  ASSERT_INT_EQ(run_until(&p.loop, &p.b.nmsg, 2), 0);
  ASSERT(!p.b.body_kept);
  ASSERT_INT_EQ(p.a.nerr + p.b.nerr, 0);
  free(data);
  return pair_close(&p);
}

/* An encoding that fails after a blob was queued (the frame is too big
 * for other reasons) takes its descriptor back: nothing is sent, and the
 * next frame's blob is #0. */
TEST(failed_encoding_takes_its_blobs_back) {
  bh__blobq q = {0};
  bh__buf out = {0};
  char *data = malloc(MIB);
  bh_value *call;

  ASSERT(data != NULL);
  fill(data, MIB);
  call = bh_value_pack(NULL, "[y# s#]", data, MIB, data, (size_t)5000);
  ASSERT(call != NULL);
  ASSERT_INT_EQ(bh__wire_put_task_info(&out, &q, 1000, 1, "echo",
                                       bh_value_object(call), NULL),
                BH_EMSGSIZE);
  ASSERT(out.len == 0 && q.len == 0 && q.next_seq == 0);
  ASSERT_INT_EQ(bh__wire_put_task_info(&out, &q, 10000, 1, "echo",
                                       bh_value_object(call), NULL),
                0);
  ASSERT(q.len == 1 && q.next_seq == 1);
  bh__blobq_free(&q);
  bh__buf_free(&out);
  bh_value_free(call);
  free(data);
  return 0;
}

/* ------------------------------------------------------------------------
 * 4. Hostile peers: a raw socket sends a task_done whose value is a blob
 * ext, with or without a descriptor, or floods the channel with more
 * descriptors than it queues or than this process can take. The channel
 * fails with EPROTO and a reason, and leaks no descriptor. */

static int
send_with_fd(int sock, const void *data, size_t n, int fd) {
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } ctl;
  struct iovec iov = {(void *)data, n};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
  struct cmsghdr *cm;

  if (fd >= 0) {
    memset(&ctl, 0, sizeof(ctl));
    mh.msg_control = ctl.buf;
    mh.msg_controllen = sizeof(ctl.buf);
    cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof(int));
  }
  return sendmsg(sock, &mh, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

/* Packs the frame: task_done 0, succeeded, value = blob ext. */
static size_t
blob_frame(char *out, size_t cap, int kind, uint64_t token, uint64_t len) {
  bh__blob_loc r = {kind, token, 0, len};
  char ext[BH__BLOB_EXT_LEN];
  msgpack_sbuffer sb;
  msgpack_packer pk;
  size_t n;

  bh__blob_ext_write(ext, &r);
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  bh_pack(&pk, "{s:s s:i s:s}", "msg_type", "task_done", "task_id", 0,
          "status", "succeeded");
  sb.data[0] = (char)0x84; /* four keys: the value follows */
  msgpack_pack_str_with_body(&pk, "returning_value", 15);
  msgpack_pack_ext_with_body(&pk, ext, sizeof(ext), BH__EXT_BLOB);
  n = sb.size;
  if (n + 4 <= cap) {
    out[0] = (char)(n >> 24);
    out[1] = (char)(n >> 16);
    out[2] = (char)(n >> 8);
    out[3] = (char)n;
    memcpy(out + 4, sb.data, n);
  }
  msgpack_sbuffer_destroy(&sb);
  return n + 4;
}

/* fd_kind: 0 none, 1 a good sealed copy, 2 an unsealed memfd, 3 a pipe. */
static int
hostile(int kind, uint64_t token, uint64_t len, int fd_kind,
        const char *why) {
  int fds0 = open_fds(), sv[2], fd = -1, p[2];
  end e = {0};
  bh__blob *copy = NULL;
  char frame[256];
  size_t n = blob_frame(frame, sizeof(frame), kind, token, len);
  uv_loop_t loop;

  ASSERT(n <= sizeof(frame));
  ASSERT_INT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  ASSERT_INT_EQ(uv_loop_init(&loop), 0);
  ASSERT_INT_EQ(bh__turn_init(&loop), 0);
  ASSERT_INT_EQ(bh__chan_open(&e.c, &loop, sv[0], 0, end_msg, end_err, &e),
                0);
  if (fd_kind == 1) {
    ASSERT_INT_EQ(bh__blob_copy(&copy, "0123456789", 10), 0);
    fd = copy->fd;
  } else if (fd_kind == 2) {
    fd = memfd_create("unsealed", MFD_CLOEXEC);
    ASSERT(fd >= 0 && ftruncate(fd, 4096) == 0);
  } else if (fd_kind == 3) {
    ASSERT_INT_EQ(pipe(p), 0);
    close(p[1]);
    fd = p[0];
  }
  ASSERT_INT_EQ(send_with_fd(sv[1], frame, n, fd), 0);
  if (copy != NULL)
    bh__blob_unref(copy);
  else if (fd >= 0)
    close(fd);
  ASSERT_INT_EQ(run_until(&loop, &e.nerr, 1), 0);
  ASSERT_INT_EQ(e.nmsg, 0);
  ASSERT_INT_EQ(e.err, BH_EPROTO);
  if (!has(e.why, why))
    fprintf(stderr, "why: %s\n", e.why);
  ASSERT(has(e.why, why));
  close(sv[1]);
  bh__turn_close();
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_INT_EQ(uv_loop_close(&loop), 0);
  ASSERT(!bh__blob_any());
  ASSERT_INT_EQ(open_fds(), fds0);
  return 0;
}

TEST(hostile_blob_without_descriptor) {
  return hostile(BH__BLOB_WIRE, 0, 10, 0,
                 "names blob descriptor #0, which never came");
}

TEST(hostile_blob_out_of_order) {
  return hostile(BH__BLOB_WIRE, 3, 10, 1,
                 "names blob descriptor #3, but the next one received is #0");
}

TEST(hostile_blob_local_kind_on_the_wire) {
  return hostile(BH__BLOB_LOCAL, 1, 10, 1,
                 "a blob ext that is not a well-formed wire reference");
}

TEST(hostile_blob_longer_than_its_memfd) {
  return hostile(BH__BLOB_WIRE, 0, 11, 1, "shorter than the bin it carries");
}

TEST(hostile_blob_unsealed) {
  return hostile(BH__BLOB_WIRE, 0, 10, 2, "not sealed against shrinking");
}

TEST(hostile_blob_not_a_memfd) {
  return hostile(BH__BLOB_WIRE, 0, 10, 3, "not a memfd");
}

/* Sends one byte with `count` (at most SCM_MAX_FD, 253) copies of fd in
 * one message: the receiver gets `count` descriptors of its own. */
static int
send_copies(int sock, char byte, int fd, int count) {
  union {
    char buf[CMSG_SPACE(253 * sizeof(int))];
    struct cmsghdr align;
  } ctl;
  struct iovec iov = {&byte, 1};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
                      .msg_control = ctl.buf,
                      .msg_controllen = CMSG_SPACE(count * sizeof(int))};
  struct cmsghdr *cm;
  int i;

  memset(&ctl, 0, sizeof(ctl));
  cm = CMSG_FIRSTHDR(&mh);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(count * sizeof(int));
  for (i = 0; i < count; i++)
    memcpy(CMSG_DATA(cm) + i * sizeof(int), &fd, sizeof(int));
  return sendmsg(sock, &mh, MSG_NOSIGNAL) == 1 ? 0 : -1;
}

/* The channel under test on sv[0] of a new socketpair; the raw peer end
 * in sv[1]. */
static int
hostile_open(uv_loop_t *loop, end *e, int sv[2]) {
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0 ||
      uv_loop_init(loop) != 0 || bh__turn_init(loop) != 0)
    return -1;
  return bh__chan_open(&e->c, loop, sv[0], 0, end_msg, end_err, e);
}

static int
hostile_close(uv_loop_t *loop) {
  bh__turn_close();
  uv_run(loop, UV_RUN_DEFAULT);
  return uv_loop_close(loop);
}

/* A hostile worker sends 1,250 descriptors, 250 a message, with the bytes
 * of a frame header that announces 1,000 bytes which never come, then is
 * killed. The channel takes 1,024 (MAX_FDS_QUEUED) and fails at the next;
 * once it has closed, every descriptor that came is closed too, those of
 * the message that overflowed the queue included (225 stayed open). */
TEST(flood_of_descriptors_leaves_none_open) {
  static const char bytes[5] = {0, 0, 3, (char)0xe8, 0};
  struct rlimit rl;
  int fds0 = open_fds(), sv[2], status, i;
  end e = {0};
  uv_loop_t loop;
  pid_t pid;

  /* Room for the whole queue, so that the flood, not the limit, fails. */
  ASSERT_INT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
  if (rl.rlim_cur < 2048 && rl.rlim_max > rl.rlim_cur) {
    rl.rlim_cur = rl.rlim_max < 2048 ? rl.rlim_max : 2048;
    ASSERT_INT_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
  }
  ASSERT_INT_EQ(hostile_open(&loop, &e, sv), 0);
  pid = fork();
  ASSERT(pid >= 0);
  if (pid == 0) {
    int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);

    close(sv[0]);
    for (i = 0; i < 5; i++)
      if (nul < 0 || send_copies(sv[1], bytes[i], nul, 250) != 0)
        _exit(1);
    pause(); /* until killed */
    _exit(0);
  }
  close(sv[1]);
  ASSERT_INT_EQ(run_until(&loop, &e.nerr, 1), 0);
  ASSERT_INT_EQ(e.err, BH_EPROTO);
  if (!has(e.why, "more blob descriptors than its frames name"))
    fprintf(stderr, "why: %s\n", e.why);
  ASSERT(has(e.why, "more blob descriptors than its frames name"));
  ASSERT_INT_EQ(kill(pid, SIGKILL), 0);
  ASSERT_INT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  ASSERT_INT_EQ(hostile_close(&loop), 0);
  ASSERT_INT_EQ(open_fds(), fds0);
  return 0;
}

/* True if recvmsg() here drops descriptors past RLIMIT_NOFILE: one sent
 * to this process while the limit leaves no room comes truncated. (Under
 * valgrind the kernel's limit stays as it was, and all would come.) */
static bool
limit_binds_recvmsg(void) {
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } ctl;
  char byte;
  struct iovec iov = {&byte, 1};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
                      .msg_control = ctl.buf,
                      .msg_controllen = sizeof(ctl.buf)};
  struct rlimit rl, none;
  int sv[2], lowest, fd;
  ssize_t got = -1;
  bool binds;

  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return false;
  if (send_copies(sv[1], 0, sv[1], 1) == 0 &&
      getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
      (lowest = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0) {
    close(lowest);
    none = rl;
    none.rlim_cur = (rlim_t)lowest;
    if (setrlimit(RLIMIT_NOFILE, &none) == 0)
      got = recvmsg(sv[0], &mh, MSG_CMSG_CLOEXEC);
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  binds = got == 1 && (mh.msg_flags & MSG_CTRUNC);
  if (got == 1 && !binds && mh.msg_controllen >= CMSG_LEN(sizeof(int))) {
    memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&mh)), sizeof(int));
    close(fd);
  }
  close(sv[0]);
  close(sv[1]);
  return binds;
}

/* 100 descriptors in one message to a process that has room for only
 * `room` more (its RLIMIT_NOFILE just above its lowest free number): the
 * kernel installs `room` of them, drops the rest, and says MSG_CTRUNC.
 * The channel fails, and the ones installed are closed; with no room at
 * all the control message is empty, and the truncation is seen still. */
static int
truncated(int room) {
  struct rlimit rl, low;
  int fds0 = open_fds(), sv[2], nul, lowest;
  end e = {0};
  uv_loop_t loop;

  if (!limit_binds_recvmsg()) {
    fprintf(stderr, "RLIMIT_NOFILE does not limit recvmsg() here: not "
            "checked\n");
    return 0;
  }
  ASSERT_INT_EQ(hostile_open(&loop, &e, sv), 0);
  nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT(nul >= 0);
  ASSERT_INT_EQ(send_copies(sv[1], 0, nul, 100), 0);
  close(nul);
  lowest = open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT(lowest >= 0);
  close(lowest);
  ASSERT_INT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
  low = rl;
  low.rlim_cur = (rlim_t)(lowest + room);
  ASSERT_INT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  ASSERT_INT_EQ(run_until(&loop, &e.nerr, 1), 0);
  ASSERT_INT_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
  ASSERT_INT_EQ(e.err, BH_EPROTO);
  if (!has(e.why, "blob descriptors were lost on the way"))
    fprintf(stderr, "why: %s\n", e.why);
  ASSERT(has(e.why, "blob descriptors were lost on the way"));
  close(sv[1]);
  ASSERT_INT_EQ(hostile_close(&loop), 0);
  ASSERT_INT_EQ(open_fds(), fds0);
  return 0;
}

TEST(truncated_descriptors_are_closed) {
  return truncated(10);
}

TEST(truncated_to_nothing_still_fails) {
  return truncated(0);
}

/* ------------------------------------------------------------------------
 * 5. A whole hive: the queen delegates `echo` of a bin in bh_blob_alloc()
 * memory to a worker, which returns its argument; the answer is the same
 * memfd, unchanged, and every descriptor and mapping is gone after. */

static int
w_echo(bh_task *t) {
  const void *p;
  size_t n;
  int rc = bh_task_unpack(t, "[y#]", &p, &n);

  return rc != 0 ? rc : bh_return(t, "y#", p, n);
}

static int
w_slice(bh_task *t) {
  const void *p;
  size_t n;
  int rc = bh_task_unpack(t, "[y#]", &p, &n);

  /* The second half of its argument: part of the same blob. */
  return rc != 0 ? rc : bh_return(t, "y#", (const char *)p + n / 2, n / 2);
}

static const bh_task_def worker_tasks[] = {
    {"echo", w_echo}, {"slice", w_slice}, {NULL, NULL}};
static const bh_class worker = {.name = "BlobWorker", .tasks = worker_tasks};

static int
q_echo(bh_task *t) {
  size_t size = 4 * MIB;
  char *mem = bh_blob_alloc(size);
  ino_t ino = mem != NULL ? ino_of(mem) : 0;
  bh_result *r;
  const void *p;
  size_t n;
  int i;

  if (mem == NULL || ino == 0)
    return bh_raise(t, "BlobError", "no blob");
  fill(mem, size);
  for (i = 0; i < 20; i++) {
    int rc = bh_delegate(t, &r, i % 2 ? "slice" : "echo", "[y#]", mem, size);

    if (rc != 0)
      return bh_raise_result(t, r);
    if (bh_result_unpack(r, NULL, 0, "y#", &p, &n) != 0 ||
        n != (i % 2 ? size / 2 : size) ||
        p == (i % 2 ? mem + size / 2 : mem) || ino_of(p) != ino ||
        memcmp(p, i % 2 ? mem + size / 2 : mem, n) != 0)
      return bh_raise(t, "BlobError", "round %d came back wrong", i);
    bh_result_free(r);
  }
  bh_blob_free(mem);
  return bh_return(t, "b", !bh__blob_any());
}

static const bh_task_def queen_tasks[] = {{"echo", q_echo}, {NULL, NULL}};
static const bh_class queen = {.name = "BlobQueen",
                               .tasks = queen_tasks,
                               .worker_class = &worker};

static int
run_echo(void) {
  int none_left = 0;
  bh_run_opts o = {.queen_class = &queen, .task_name = "echo",
                   .min_workers = 1, .max_workers = 1};
  bh_result *r = NULL;

  ASSERT_INT_EQ(run_hive(&o, &r), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "b", &none_left), 0);
  ASSERT(none_left);
  bh_result_free(r);
  ASSERT(!bh__blob_any());
  return 0;
}

/* The first run also opens what libuv keeps for the process (its signal
 * pipe): descriptors are counted from the second. */
TEST(hive_echo_of_a_blob_is_the_same_memfd) {
  int fds0;

  ASSERT_INT_EQ(run_echo(), 0);
  fds0 = open_fds();
  ASSERT_INT_EQ(run_echo(), 0);
  ASSERT_INT_EQ(open_fds(), fds0);
  return 0;
}

TEST_MAIN(TEST_ENTRY(copy_then_adopt_maps_the_same_bytes),
          TEST_ENTRY(adopt_refuses_what_is_not_a_sealed_memfd_long_enough),
          TEST_ENTRY(ext_payload_round_trips),
          TEST_ENTRY(value_of_a_blob_bin_does_not_copy),
          TEST_ENTRY(small_or_disabled_or_public_packs_copy),
          TEST_ENTRY(channel_passes_a_blob_and_sends_it_back_without_copy),
          TEST_ENTRY(failed_encoding_takes_its_blobs_back),
          TEST_ENTRY(more_blobs_than_one_message_carries),
          TEST_ENTRY(large_frame_value_takes_its_buffer),
          TEST_ENTRY(hostile_blob_without_descriptor),
          TEST_ENTRY(hostile_blob_out_of_order),
          TEST_ENTRY(hostile_blob_local_kind_on_the_wire),
          TEST_ENTRY(hostile_blob_longer_than_its_memfd),
          TEST_ENTRY(hostile_blob_unsealed),
          TEST_ENTRY(hostile_blob_not_a_memfd),
          TEST_ENTRY(flood_of_descriptors_leaves_none_open),
          TEST_ENTRY(truncated_descriptors_are_closed),
          TEST_ENTRY(truncated_to_nothing_still_fails),
          TEST_ENTRY(hive_echo_of_a_blob_is_the_same_memfd))
