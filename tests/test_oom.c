/* test_oom.c - the cause of a SIGKILLed worker's death says OOM killer only
 * on evidence naming that worker (src/proc/oom.c): a real OOM kill of the
 * worker in a small memory cgroup is named with the kernel log's record;
 * an operator's kill -9 while an unrelated process is OOM-killed is not;
 * a rise of the shared cgroup's count is only a "possibly" with a path to
 * check; a forged kernel log record is no evidence.
 *
 * Real OOM kills need root: a memory cgroup to create (cgroup v2 at
 * /sys/fs/cgroup, else v1 at /sys/fs/cgroup/memory) and the kernel log to
 * read. Without them a case says why and passes without checking. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/base.h"
#include "runner.h"

#define CGROUP2_MAGIC 0x63677270 /* CGROUP2_SUPER_MAGIC */
#define CGROUP1_MAGIC 0x27e0eb   /* CGROUP_SUPER_MAGIC */

/* ---- memory cgroups ---------------------------------------------------- */

static bool
write_file(const char *dir, const char *file, const char *fmt, ...) {
  char path[300];
  va_list ap;
  FILE *f;
  int ok;

  snprintf(path, sizeof(path), "%s/%s", dir, file);
  f = fopen(path, "w");
  if (f == NULL)
    return false;
  va_start(ap, fmt);
  ok = vfprintf(f, fmt, ap) >= 0;
  va_end(ap);
  return fclose(f) == 0 && ok;
}

static bool
is_fs(const char *path, long magic) {
  struct statfs s;

  return statfs(path, &s) == 0 && (long)s.f_type == magic;
}

/* The memory cgroup hierarchy to test in: v2 or v1; NULL if none. */
static const char *
hierarchy(bool *v2) {
  *v2 = is_fs("/sys/fs/cgroup", CGROUP2_MAGIC);
  if (*v2)
    return "/sys/fs/cgroup";
  return is_fs("/sys/fs/cgroup/memory", CGROUP1_MAGIC) ? "/sys/fs/cgroup/memory"
                                                       : NULL;
}

/* Makes a memory cgroup limited to `mib` MiB, without swap, in dir. 0, or
 * -1 after saying why not (the case then does not check). */
static int
cgroup_make(char *dir, size_t len, const char *tag, int mib) {
  long long bytes = (long long)mib << 20;
  bool v2, ok;
  const char *h = hierarchy(&v2);

  if (h == NULL) {
    fprintf(stderr, "no memory cgroup hierarchy (v2 /sys/fs/cgroup or v1 "
                    "/sys/fs/cgroup/memory): not checked\n");
    return -1;
  }
  snprintf(dir, len, "%s/bh-test-%s-%d", h, tag, (int)getpid());
  if (mkdir(dir, 0755) != 0) {
    fprintf(stderr, "cannot create %s (%s): not checked\n", dir,
            strerror(errno));
    return -1;
  }
  ok = v2 ? write_file(dir, "memory.max", "%lld\n", bytes)
          : write_file(dir, "memory.limit_in_bytes", "%lld\n", bytes);
  if (ok) /* swap would stall the OOM kill; not every kernel has these */
    v2 ? write_file(dir, "memory.swap.max", "0\n")
       : write_file(dir, "memory.memsw.limit_in_bytes", "%lld\n", bytes);
  if (!ok) {
    fprintf(stderr,
            "cannot limit the memory of %s (no memory controller "
            "there?): not checked\n",
            dir);
    rmdir(dir);
    return -1;
  }
  return 0;
}

static void
cgroup_remove(const char *dir) {
  if (rmdir(dir) != 0)
    fprintf(stderr, "warning: cannot remove %s: %s\n", dir, strerror(errno));
}

/* The directory of this process's memory cgroup, to come back to. */
static int
cgroup_home(char *dir, size_t len) {
  char line[512];
  bool v2;
  const char *h = hierarchy(&v2);
  FILE *f = fopen("/proc/self/cgroup", "r");
  int rc = -1;

  while (h != NULL && f != NULL && fgets(line, sizeof(line), f) != NULL) {
    char *ctl = strchr(line, ':'), *cg = ctl ? strchr(ctl + 1, ':') : NULL;

    if (cg == NULL)
      continue;
    *cg++ = '\0';
    cg[strcspn(cg, "\n")] = '\0';
    if (v2 ? strcmp(line, "0") == 0 : strstr(ctl, "memory") != NULL) {
      snprintf(dir, len, "%s%s", h, cg);
      rc = 0;
    }
  }
  if (f != NULL)
    fclose(f);
  return rc;
}

/* True if the kernel log can be read and names this process's pids. */
static bool
kmsg_usable(void) {
  int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  struct stat st;

  if (fd < 0) {
    fprintf(stderr, "cannot read /dev/kmsg (%s): not checked\n",
            strerror(errno));
    return false;
  }
  close(fd);
  if (stat("/proc/self/ns/pid", &st) != 0 || st.st_ino != 0xEFFFFFFCU) {
    fprintf(stderr, "not in the initial pid namespace: not checked\n");
    return false;
  }
  return true;
}

/* ---- worker tasks ------------------------------------------------------ */

static int
w_pid(bh_task *t) {
  return bh_return(t, "I", (int64_t)getpid());
}

/* Touches memory until the OOM killer ends this process. */
static void
eat(void) {
  for (;;) {
    char *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED)
      return;
    memset(p, 1, 1 << 20);
  }
}

/* Joins memory cgroup args[0], then eats memory until the kernel's OOM
 * killer ends this worker. */
static int
w_oom(bh_task *t) {
  char dir[200];

  if (bh_task_unpack(t, "[s]", dir, sizeof(dir)) != 0)
    return BH_ERAISED;
  if (!write_file(dir, "cgroup.procs", "%d\n", (int)getpid()))
    return bh_raise(t, "OSError", "cannot join %s", dir);
  eat();
  return bh_raise(t, "MemoryError", "mmap failed before the OOM kill");
}

/* Another process, the OOM killer's favourite, joins cgroup args[0] (if
 * not "") and eats memory there until it is OOM-killed; then this worker
 * is killed with SIGKILL, as an operator's kill -9 would (the kernel tells
 * the two apart in nothing but the sender). */
static int
w_kill9_after_oom(bh_task *t) {
  char dir[200];
  int status;
  pid_t pid;

  if (bh_task_unpack(t, "[s]", dir, sizeof(dir)) != 0)
    return BH_ERAISED;
  pid = fork();
  if (pid == 0) {
    if (!write_file("/proc/self", "oom_score_adj", "1000\n") ||
        (dir[0] != '\0' &&
         !write_file(dir, "cgroup.procs", "%d\n", (int)getpid())))
      _exit(2);
    eat();
    _exit(3);
  }
  if (pid < 0 || waitpid(pid, &status, 0) != pid)
    return bh_raise(t, "OSError", "no victim process");
  if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
    return bh_raise(t, "Unexpected", "the victim was not OOM-killed: 0x%x",
                    status);
  kill(getpid(), SIGKILL);
  return 0;
}

/* Writes a record naming this worker as the OOM killer's victim into the
 * kernel log, as user space can, then is killed with SIGKILL. */
static int
w_forge_then_kill9(bh_task *t) {
  char rec[200];
  int fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC), n;

  n = snprintf(rec, sizeof(rec),
               "<3>beehive test_oom, a forged record: "
               "Out of memory: Killed process %d (test_oom) total-vm:1kB\n",
               (int)getpid());
  if (fd < 0 || write(fd, rec, (size_t)n) != n)
    return bh_raise(t, "OSError", "cannot write /dev/kmsg");
  n = snprintf(rec, sizeof(rec),
               "<6>oom-kill:constraint=CONSTRAINT_NONE,"
               "task=test_oom,pid=%d,uid=0\n",
               (int)getpid());
  if (write(fd, rec, (size_t)n) != n)
    return bh_raise(t, "OSError", "cannot write /dev/kmsg");
  close(fd);
  kill(getpid(), SIGKILL);
  return 0;
}

static const bh_task_def wtasks[] = {{"pid", w_pid},
                                     {"oom", w_oom},
                                     {"kill9_after_oom", w_kill9_after_oom},
                                     {"forge_then_kill9", w_forge_then_kill9},
                                     {NULL, NULL}};
static const bh_class worker = {.name = "W", .tasks = wtasks};

/* ---- the queen --------------------------------------------------------- */

/* Learns the worker's pid, then delegates args[0] with args[1] to it;
 * returns the status, the root error message and the pid. */
static int
q_once(bh_task *t) {
  char name[64], arg[200];
  int64_t pid = 0;
  bh_result *r;
  int rc;

  if (bh_task_unpack(t, "[s s]", name, sizeof(name), arg, sizeof(arg)) != 0)
    return BH_ERAISED;
  rc = bh_delegate(t, &r, "pid", "[]");
  if (r == NULL || bh_result_unpack(r, NULL, 0, "I", &pid) != 0)
    return rc != 0 ? rc : bh_raise(t, "Unexpected", "no pid");
  bh_result_free(r);
  rc = bh_delegate(t, &r, name, "[s]", arg);
  if (r == NULL)
    return rc;
  rc = bh_return(t, "[i s I]", (int)bh_result_status(r),
                 bh_result_root_errmsg(r) ? bh_result_root_errmsg(r) : "", pid);
  bh_result_free(r);
  return rc;
}

static const bh_task_def qtasks[] = {{"once", q_once}, {NULL, NULL}};
static const bh_class queen = {
    .name = "Q", .tasks = qtasks, .worker_class = &worker};

typedef struct once_out {
  int status;
  char msg[600];
  int64_t pid;
} once_out;

/* Runs a hive of one worker on "once" [name, arg]. */
static int
run_once(const char *name, const char *arg, once_out *u) {
  bh_run_opts o = {.workers = 1,
                   .max_workers = 1,
                   .queen_class = &queen,
                   .task_name = "once"};
  bh_result *r;
  int rc;

  o.task_args = bh_value_pack(NULL, "[s s]", name, arg);
  rc = bh_run(&o, &r);
  bh_value_free((bh_value *)o.task_args);
  if (rc != 0) {
    char buf[2048];

    bh_result_format(r, buf, sizeof(buf));
    fprintf(stderr, "%s\n", buf);
  }
  if (rc == 0)
    rc = bh_result_unpack(r, NULL, 0, "[i s I]", &u->status, u->msg,
                          sizeof(u->msg), &u->pid);
  bh_result_free(r);
  if (rc == 0)
    fprintf(stderr, "worker %lld: %s\n", (long long)u->pid, u->msg);
  return rc;
}

/* ---- cases ------------------------------------------------------------- */

/* The worker itself is OOM-killed: the cause says so, quoting the kernel
 * log's record that names its pid. */
TEST(oom_killed_worker_is_named_with_evidence) {
  char dir[256], by_line[64], by_summary[64];
  once_out u;

  if (!kmsg_usable() || cgroup_make(dir, sizeof(dir), "oom", 64) != 0)
    return 0;
  ASSERT_INT_EQ(run_once("oom", dir, &u), 0);
  cgroup_remove(dir);
  ASSERT_INT_EQ(u.status, BH_RAISED);
  ASSERT(strstr(u.msg, "killed by signal SIGKILL (Killed), by the kernel's "
                       "OOM killer: the kernel log (dmesg) says \"") != NULL);
  snprintf(by_line, sizeof(by_line), "Killed process %lld (", (long long)u.pid);
  snprintf(by_summary, sizeof(by_summary), ",pid=%lld,", (long long)u.pid);
  ASSERT(strstr(u.msg, by_line) != NULL || strstr(u.msg, by_summary) != NULL);
  return 0;
}

/* An unrelated process is OOM-killed in a cgroup of its own while the
 * worker lives, then the worker gets a kill -9: the machine's count of OOM
 * kills rose, but nothing names the worker, so the cause is the signal
 * alone. (The count was the old evidence, and blamed the OOM killer.) */
TEST(kill9_during_an_unrelated_oom_kill_is_not_oom) {
  char dir[256];
  once_out u;

  if (cgroup_make(dir, sizeof(dir), "other", 64) != 0)
    return 0;
  ASSERT_INT_EQ(run_once("kill9_after_oom", dir, &u), 0);
  cgroup_remove(dir);
  ASSERT_INT_EQ(u.status, BH_RAISED);
  ASSERT(strstr(u.msg, "killed by signal SIGKILL (Killed)") != NULL);
  ASSERT(strstr(u.msg, "OOM") == NULL);
  return 0;
}

/* The same with the victim in the worker's own cgroup (the queen's too):
 * that cgroup's count rose while the worker lived, which is worth saying,
 * but only as "possibly", with the file that shows it. */
TEST(kill9_during_an_oom_kill_in_its_cgroup_is_only_possibly_oom) {
  char dir[256], home[256], counter[300];
  bool v2;
  once_out u;
  int rc;

  if (hierarchy(&v2) == NULL || cgroup_home(home, sizeof(home)) != 0 ||
      cgroup_make(dir, sizeof(dir), "shared", 256) != 0)
    return 0;
  ASSERT(write_file(dir, "cgroup.procs", "%d\n", (int)getpid()));
  rc = run_once("kill9_after_oom", "", &u);
  ASSERT(write_file(home, "cgroup.procs", "%d\n", (int)getpid()));
  cgroup_remove(dir);
  ASSERT_INT_EQ(rc, 0);
  ASSERT_INT_EQ(u.status, BH_RAISED);
  snprintf(counter, sizeof(counter), "%s/%s", dir,
           v2 ? "memory.events" : "memory.oom_control");
  ASSERT(strstr(u.msg, "killed by signal SIGKILL (Killed), possibly by the "
                       "OOM killer: the oom_kill count in ") != NULL);
  ASSERT(strstr(u.msg, counter) != NULL);
  ASSERT(strstr(u.msg, "rose by 1 while it lived") != NULL);
  ASSERT(strstr(u.msg, "by the kernel's OOM killer") == NULL);
  return 0;
}

/* User space can write the kernel log, but not as the kernel: a record it
 * wrote naming the worker is no evidence. */
TEST(forged_kernel_log_record_is_no_evidence) {
  once_out u;
  int fd;

  if (!kmsg_usable())
    return 0;
  fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    fprintf(stderr, "cannot write /dev/kmsg: not checked\n");
    return 0;
  }
  close(fd);
  ASSERT_INT_EQ(run_once("forge_then_kill9", "", &u), 0);
  ASSERT_INT_EQ(u.status, BH_RAISED);
  ASSERT(strstr(u.msg, "killed by signal SIGKILL (Killed)") != NULL);
  ASSERT(strstr(u.msg, "OOM") == NULL);
  return 0;
}

TEST_MAIN(TEST_ENTRY_T(oom_killed_worker_is_named_with_evidence, 30),
          TEST_ENTRY_T(kill9_during_an_unrelated_oom_kill_is_not_oom, 30),
          TEST_ENTRY_T(
              kill9_during_an_oom_kill_in_its_cgroup_is_only_possibly_oom, 30),
          TEST_ENTRY_T(forged_kernel_log_record_is_no_evidence, 30))
