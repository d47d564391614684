/* fixture.c - see fixture.h. */
#include "fixture.h"

#include <dirent.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "value/blob.h"
#include "runner.h"
#include "runtime/turn.h"
#include "transport/send.h"

unsigned char
pattern(size_t i) {
  return (unsigned char)(i * 131 + (i >> 12) + 7);
}

void
fill(void *p, size_t n) {
  size_t i;

  for (i = 0; i < n; i++)
    ((unsigned char *)p)[i] = pattern(i);
}

bool
holds_pattern(const void *p, size_t n) {
  size_t i;

  for (i = 0; i < n; i++)
    if (((const unsigned char *)p)[i] != pattern(i))
      return false;
  return true;
}

/* The descriptors open now. The first loop libuv makes opens a pipe it
 * keeps for the process, so one is made and closed first. */
int
open_fds(void) {
  static bool warm;
  DIR *d;
  int n = 0;

  if (!warm) {
    uv_loop_t loop;

    uv_loop_init(&loop);
    uv_loop_close(&loop);
    warm = true;
  }
  d = opendir("/proc/self/fd");
  while (d != NULL && readdir(d) != NULL)
    n++;
  if (d != NULL)
    closedir(d);
  return n;
}


void
end_msg(bh__chan *c, const bh__msg *m, void *udata) {
  /* (the first argument only when there is one: a fresh zone's empty
   * array points at memory nobody wrote) */
  const msgpack_object *v =
      m->type != BH__MSG_TASK_INFO ? m->returning_value
      : m->args->via.array.size > 0 ? &m->args->via.array.ptr[0]
                                     : NULL;
  end *e = udata;

  (void)c;
  e->nmsg++;
  bh_value_free(e->kept);
  e->kept = bh__msg_value(m);
  /* (a small message's value is made by the decoder, and its body lies
   * in it: only a frame with a buffer of its own counts) */
  e->body_kept = m->own != NULL && bh_value_data(e->kept, NULL) == m->body;
  if (e->body_kept) {
    e->nbody_kept++;
    e->body_at = e->kept->base_off;
  }
  if (m->args != NULL) {
    uint32_t i;

    e->nbins = e->nbins_ok = 0;
    for (i = 0; i < m->args->via.array.size; i++) {
      const msgpack_object *a = &m->args->via.array.ptr[i];

      bool good = a->type == MSGPACK_OBJECT_BIN &&
                  holds_pattern(a->via.bin.ptr, a->via.bin.size);

      e->nbins++;
      e->nbins_ok += good &&
                     bh__blob_find(a->via.bin.ptr, a->via.bin.size) != NULL;
      e->bins_seen++;
      e->bins_good += good;
    }
  }
  e->ptr = v != NULL && v->type == MSGPACK_OBJECT_BIN ? v->via.bin.ptr : NULL;
  e->len = e->ptr != NULL ? v->via.bin.size : 0;
  e->in_blob = e->ptr != NULL && bh__blob_find(e->ptr, e->len) != NULL;
}

void
end_err(bh__chan *c, int err, const char *why, void *udata) {
  end *e = udata;

  e->nerr++;
  e->err = err;
  snprintf(e->why, sizeof(e->why), "%s", why);
  bh__chan_close(c);
}

void
msglog_add(msglog *l, const bh__msg *m) {
  const msgpack_object *v = m->returning_value;

  if (l->nmsg >= MSGLOG_MAX)
    return;
  l->type[l->nmsg] = m->type;
  l->id[l->nmsg] = m->task_id;
  if (m->type == BH__MSG_TASK_DONE && v != NULL &&
      v->type == MSGPACK_OBJECT_BIN) {
    l->bin_len[l->nmsg] = v->via.bin.size;
    l->bin_ok[l->nmsg] = holds_pattern(v->via.bin.ptr, v->via.bin.size);
  }
  l->nmsg++;
}

int
send_bin_result(bh__chan *c, int64_t id, size_t n) {
  char *p = malloc(n);
  msgpack_object o = {.type = MSGPACK_OBJECT_BIN};
  bh__wire_done d = {.status = BH_SUCCEEDED, .returning_value = &o};
  int rc;

  if (p == NULL)
    return BH_ENOMEM;
  fill(p, n);
  o.via.bin.ptr = p;
  o.via.bin.size = (uint32_t)n;
  rc = bh__send_task_done(c, id, &d, NULL);
  free(p);
  return rc;
}

int
run_until(uv_loop_t *loop, const int *count, int want) {
  int spins = 0;

  while (*count < want && spins++ < 100000)
    uv_run(loop, UV_RUN_ONCE);
  return *count >= want ? 0 : -1;
}

const msgpack_object *
kept_bin(const end *e) {
  const msgpack_object *root = bh_value_object(e->kept);
  const msgpack_object *v = bh__map_get(root, "returning_value");

  if (v == NULL)
    v = &bh__map_get(root, "args")->via.array.ptr[0];
  return v;
}


int
pair_open(pair *p, size_t live0) {
  int sv[2];

  memset(p, 0, sizeof(*p));
  p->fds0 = open_fds();
  p->live0 = live0;
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0 ||
      uv_loop_init(&p->loop) != 0 || bh__turn_init(&p->loop) != 0 ||
      bh__chan_open(&p->a.c, &p->loop, sv[0], 0, end_msg, end_err, &p->a) ||
      bh__chan_open(&p->b.c, &p->loop, sv[1], 0, end_msg, end_err, &p->b))
    return -1;
  return 0;
}

int
pair_close(pair *p) {
  bh_value_free(p->a.kept);
  bh_value_free(p->b.kept);
  ASSERT(!bh__blob_any());
  bh__chan_close(p->a.c);
  bh__chan_close(p->b.c);
  bh__turn_close();
  uv_run(&p->loop, UV_RUN_DEFAULT);
  ASSERT_INT_EQ(uv_loop_close(&p->loop), 0);
  ASSERT_INT_EQ(open_fds(), p->fds0);
  ASSERT_INT_EQ(bh__alloc_live(), p->live0);
  return 0;
}


int
run_hive(const bh_run_opts *o, bh_result **r) {
  int rc = bh_run(o, r);

  if (rc != 0) {
    char buf[2048];

    bh_result_format(*r, buf, sizeof(buf));
    fprintf(stderr, "%s\n", buf);
  }
  return rc;
}

int
fixture_script(bh_task *t) {
  const msgpack_object *steps = &bh_task_args(t)->via.array.ptr[0];
  bh__buf out = {0};
  msgpack_packer pk;
  uint32_t i;
  int rc = 0;

  msgpack_packer_init(&pk, &out, bh__buf_write);
  msgpack_pack_array(&pk, steps->via.array.size);
  for (i = 0; rc == 0 && i < steps->via.array.size; i++) {
    const msgpack_object *s = steps->via.array.ptr[i].via.array.ptr;
    char name[16];
    bh_result *r;

    snprintf(name, sizeof(name), "%.*s", (int)s[0].via.str.size,
             s[0].via.str.ptr);
    rc = bh_delegate_value(t, &r, name, &s[1],
                           steps->via.array.ptr[i].via.array.size > 2 ? &s[2]
                                                                      : NULL);
    if (rc == 0)
      rc = bh_pack(&pk, "o", bh_result_value(r));
    else if (rc == BH_ERAISED)
      rc = bh_pack(&pk, "[s s]", bh_result_root_errtype(r),
                   bh_result_root_errmsg(r));
    bh_result_free(r);
  }
  if (rc == 0) {
    bh_value *v = bh_value_from_bytes(out.data, out.len);

    rc = v ? bh_return_object(t, bh_value_object(v)) : BH_ENOMEM;
    bh_value_free(v);
  }
  bh__buf_free(&out);
  return rc;
}

const msgpack_object *
fixture_step(const bh_result *r, uint32_t i) {
  const msgpack_object *v = bh_result_value(r);

  return v->type == MSGPACK_OBJECT_ARRAY && i < v->via.array.size
             ? &v->via.array.ptr[i]
             : NULL;
}

int
fixture_pass(bh_task *t) {
  const msgpack_object *a = bh_task_args(t);
  msgpack_object rest = {.type = MSGPACK_OBJECT_ARRAY};
  char name[64];
  bh_result *r;
  int rc;

  if (bh_unpack(&a->via.array.ptr[0], NULL, 0, "s", name, sizeof(name)))
    return bh_raise(t, "TypeError", "args[0] must be a task name");
  rest.via.array.ptr = a->via.array.ptr + 1;
  rest.via.array.size = a->via.array.size - 1;
  rc = bh_delegate_value(t, &r, name, &rest, NULL);
  if (r == NULL)
    return rc;
  if (rc == 0)
    rc = bh_return_object(t, bh_result_value(r));
  else
    rc = bh_raise_result(t, r);
  bh_result_free(r);
  return rc;
}

bool
fixture_aborts(void (*fn)(void), char *msg, size_t len) {
  int fds[2], status;
  ssize_t n;
  size_t got = 0;
  pid_t pid;

  msg[0] = '\0';
  if (pipe(fds) != 0 || (pid = fork()) < 0)
    return false;
  if (pid == 0) {
    dup2(fds[1], STDERR_FILENO);
    fn();
    _exit(0);
  }
  close(fds[1]);
  while (got + 1 < len && (n = read(fds[0], msg + got, len - 1 - got)) > 0)
    got += (size_t)n;
  msg[got] = '\0';
  close(fds[0]);
  if (waitpid(pid, &status, 0) != pid)
    return false;
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

void
loglines_keep(void *udata, bh_log_level level, int indent, const char *line) {
  loglines *l = udata;

  (void)level;
  (void)indent;
  l->len += (size_t)snprintf(l->text + l->len, sizeof(l->text) - l->len,
                             "%s\n", line);
  if (l->len >= sizeof(l->text))
    l->len = sizeof(l->text) - 1;
}
