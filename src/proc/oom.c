/* oom.c - was a SIGKILLed child killed by the kernel's OOM killer? See
 * oom.h.
 *
 * SIGKILL says nothing of who sent it: the OOM killer, an operator's
 * kill -9, the queen's own grace kill. The machine-wide count of OOM kills
 * (/proc/vmstat oom_kill) is no evidence either: it rises for any process
 * anywhere, so an operator's kill -9 during an unrelated OOM kill would be
 * blamed on the OOM killer. So the cause says OOM only on evidence about
 * this process, in two strengths:
 *
 * - Proof: the kernel log (/dev/kmsg, readable by root where dmesg is
 *   restricted) has a record, written by the kernel (facility 0, which
 *   user space cannot forge) after the child started, that names its pid
 *   as the OOM killer's victim: "...out of memory: Killed process <pid>
 *   (comm)..." or the summary "oom-kill:...,task=comm,pid=<pid>,...". A
 *   descriptor opened at the child's start and positioned at the log's
 *   end is read after the death, so older records about an earlier
 *   process with the same pid are never seen. The log names pids of the
 *   initial pid namespace: elsewhere it is not read.
 * - A hint: the oom_kill count of the memory cgroup the child was in when
 *   it started (cgroup v2 memory.events, v1 memory.oom_control) rose while
 *   it lived. That cgroup is usually the queen's, shared with her, her
 *   other workers and perhaps more: any of them counts there, so the cause
 *   says "possibly", and where to look.
 *
 * Without either (no log access and no cgroup counter, or a child that
 * moved to another cgroup and whose log record was lost or beyond the
 * bound below) the cause is the plain signal, never a guess. */
#include "proc/oom.h"
#include "base/base.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The nsfs inode number of the initial pid namespace (PROC_PID_INIT_INO). */
#define PID_NS_INIT_INO 0xEFFFFFFCU
/* The kernel log is read on the loop thread after a SIGKILL death: at most
 * this many records (some milliseconds), so that a kernel that logged a
 * flood while the child lived cannot hold the loop; past it the evidence
 * is missed, and the cause is the plain signal. */
#define KMSG_MAX_RECORDS 8192
#define KMSG_RECORD 8192 /* /dev/kmsg hands out one record per read() */
#define QUOTE_MAX 200    /* of a log record, in the cause */
#define PATH_ROOM 512

struct bh__oom {
  int kmsg;        /* /dev/kmsg, at the end of the log of the child's
                    * start; -1 none */
  char *counter;   /* the oom_kill counter file of its memory cgroup */
  long long kills; /* the count there at its start */
};

/* Where the memory controller's hierarchies are mounted: read once. */
typedef struct cg_mount {
  char root[PATH_ROOM]; /* the mount's root within the hierarchy */
  char dir[PATH_ROOM];  /* its mount point; "" none */
} cg_mount;

static struct {
  pthread_once_t once;
  cg_mount v1, v2; /* a cgroup (v1) mount with memory; a cgroup2 mount */
  int init_pid_ns; /* this process sees the initial pid namespace's pids */
} M = {PTHREAD_ONCE_INIT, {"", ""}, {"", ""}, 0};

/* mountinfo escapes ' ', '\t', '\n' and '\\' as \ooo. */
static void
unescape(char *s) {
  char *d = s;

  for (; *s != '\0'; s++, d++) {
    if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
        s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
      *d = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
      s += 3;
    } else {
      *d = *s;
    }
  }
  *d = '\0';
}

/* True if comma-separated list holds word. */
static bool
has_word(const char *list, const char *word) {
  size_t n = strlen(word);

  for (;;) {
    if (strncmp(list, word, n) == 0 && (list[n] == ',' || list[n] == '\0'))
      return true;
    if ((list = strchr(list, ',')) == NULL)
      return false;
    list++;
  }
}

/* One line of /proc/self/mountinfo: "id parent dev root mountpoint opts
 * [optional...] - fstype source superopts". */
static void
mount_line(const char *line) {
  char root[PATH_ROOM], dir[PATH_ROOM], type[32], opts[256];
  const char *sep = strstr(line, " - ");
  cg_mount *m = NULL;

  if (sep == NULL || sscanf(line, "%*s %*s %*s %511s %511s", root, dir) != 2 ||
      sscanf(sep + 3, "%31s %*s %255s", type, opts) != 2)
    return;
  if (strcmp(type, "cgroup2") == 0)
    m = &M.v2;
  else if (strcmp(type, "cgroup") == 0 && has_word(opts, "memory"))
    m = &M.v1;
  if (m == NULL || m->dir[0] != '\0')
    return; /* the first mount of a hierarchy serves */
  unescape(root);
  unescape(dir);
  snprintf(m->root, sizeof(m->root), "%s", root);
  snprintf(m->dir, sizeof(m->dir), "%s", dir);
}

static void
mounts_read(void) {
  FILE *f = fopen("/proc/self/mountinfo", "re");
  char *line = NULL;
  size_t cap = 0;
  struct stat st;

  while (f != NULL && getline(&line, &cap, f) > 0)
    mount_line(line);
  free(line); /* getline()'s, from libc */
  if (f != NULL)
    fclose(f);
  M.init_pid_ns =
      stat("/proc/self/ns/pid", &st) == 0 && st.st_ino == PID_NS_INIT_INO;
}

/* The "oom_kill N" count in a cgroup's memory.events (v2) or
 * memory.oom_control (v1); -1 unknown. */
static long long
read_count(const char *path) {
  FILE *f = fopen(path, "re");
  char line[128];
  long long n = -1;

  while (f != NULL && fgets(line, sizeof(line), f) != NULL)
    if (sscanf(line, "oom_kill %lld", &n) == 1)
      break;
  if (f != NULL)
    fclose(f);
  return n;
}

/* The counter file of cgroup path `cg` (as /proc/<pid>/cgroup names it)
 * in hierarchy m: returns owned, or NULL if m is not mounted or its mount
 * does not show that cgroup. */
static char *
counter_path(const cg_mount *m, const char *cg, const char *file) {
  size_t n = strlen(m->root);

  if (m->dir[0] == '\0')
    return NULL;
  if (strcmp(m->root, "/") != 0) {
    if (strncmp(cg, m->root, n) != 0 || (cg[n] != '/' && cg[n] != '\0'))
      return NULL;
    cg += n;
  }
  return bh__asprintf("%s%s%s", m->dir, strcmp(cg, "/") == 0 ? "" : cg, file);
}

/* The oom_kill counter file of pid's memory cgroup, from the lines
 * "id:controllers:path" of /proc/<pid>/cgroup: the v1 hierarchy that has
 * the memory controller if there is one, else the v2 one. Returns owned
 * or NULL. */
static char *
cgroup_counter(pid_t pid) {
  char path[64], line[PATH_ROOM + 64], v1[PATH_ROOM] = "", v2[PATH_ROOM] = "";
  FILE *f;

  snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
  f = fopen(path, "re");
  while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
    char *ctl = strchr(line, ':'), *cg = ctl ? strchr(ctl + 1, ':') : NULL;

    if (cg == NULL)
      continue;
    *cg++ = '\0';
    cg[strcspn(cg, "\n")] = '\0';
    if (has_word(ctl + 1, "memory"))
      snprintf(v1, sizeof(v1), "%s", cg);
    else if (strcmp(line, "0") == 0 && ctl[1] == '\0')
      snprintf(v2, sizeof(v2), "%s", cg);
  }
  if (f != NULL)
    fclose(f);
  if (v1[0] != '\0')
    return counter_path(&M.v1, v1, "/memory.oom_control");
  return v2[0] != '\0' ? counter_path(&M.v2, v2, "/memory.events") : NULL;
}

/* The kernel log, positioned after its last record; -1 if unreadable
 * (not root where dmesg is restricted) or its pids are not ours. */
static int
kmsg_open(void) {
  int fd;

  if (!M.init_pid_ns)
    return -1;
  fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd >= 0 && lseek(fd, 0, SEEK_END) < 0) {
    close(fd);
    fd = -1;
  }
  return fd;
}

bh__oom *
bh__oom_start(pid_t pid) {
  bh__oom *o;

  pthread_once(&M.once, mounts_read);
  o = bh__calloc(1, sizeof(*o));
  if (o == NULL)
    return NULL;
  o->kmsg = kmsg_open();
  o->counter = cgroup_counter(pid);
  o->kills = o->counter != NULL ? read_count(o->counter) : -1;
  if (o->kills < 0) {
    bh__free(o->counter);
    o->counter = NULL;
  }
  if (o->kmsg < 0 && o->counter == NULL) {
    bh__free(o);
    return NULL;
  }
  return o;
}

/* The message of a kernel log record ("prio,seq,time,flags;message\n"
 * then " KEY=value" lines) if the kernel wrote it (facility 0; user space
 * writing /dev/kmsg gets another), else NULL. Cuts the record. */
static char *
kernel_text(char *rec) {
  char *semi = strchr(rec, ';');

  if (semi == NULL || strtoul(rec, NULL, 10) >> 3 != 0)
    return NULL;
  semi[1 + strcspn(semi + 1, "\n")] = '\0';
  return semi + 1;
}

/* 2 if text is the OOM killer's record of killing pid ("Out of memory:
 * Killed process <pid> (comm) total-vm:...", also "Memory cgroup out of
 * memory: ..."), 1 if its summary naming pid as the victim ("oom-kill:
 * ...,task=comm,pid=<pid>,uid=..."), else 0. Cuts text to what the cause
 * quotes. */
static int
names_victim(char *text, pid_t pid) {
  char *k = strstr(text, "Killed process "), *end, key[32];

  if (k != NULL && strcasestr(text, "out of memory") != NULL &&
      strtol(k + 15, &end, 10) == (long)pid && *end == ' ') {
    if ((end = strstr(end, " total-vm")) != NULL)
      *end = '\0';
    return 2;
  }
  snprintf(key, sizeof(key), ",pid=%d,", (int)pid);
  return strncmp(text, "oom-kill:", 9) == 0 && strstr(text, key) != NULL;
}

/* Reads the log since the child's start for a record naming pid as the OOM
 * killer's victim. Returns the record, quoted owned, or NULL. */
static char *
kmsg_find(int fd, pid_t pid) {
  char *rec = bh__malloc(KMSG_RECORD), *found = NULL, *text;
  int best = 0, i, kind;

  for (i = 0; rec != NULL && i < KMSG_MAX_RECORDS && best < 2; i++) {
    ssize_t n = read(fd, rec, KMSG_RECORD - 1);

    /* EPIPE: records were overwritten before they were read; the next
     * read goes on from the oldest one left. */
    if (n < 0 && (errno == EINTR || errno == EPIPE))
      continue;
    if (n <= 0) /* EAGAIN: that was the last record */
      break;
    rec[n] = '\0';
    text = kernel_text(rec);
    kind = text != NULL ? names_victim(text, pid) : 0;
    if (kind > best) {
      best = kind;
      bh__free(found);
      found = bh__asprintf("%.*s%s", QUOTE_MAX, text,
                           strlen(text) > QUOTE_MAX ? "..." : "");
    }
  }
  bh__free(rec);
  return found;
}

char *
bh__oom_cause(bh__oom *o, pid_t pid) {
  char *quote = o != NULL && o->kmsg >= 0 ? kmsg_find(o->kmsg, pid) : NULL;
  char *cause = NULL;
  long long now = o != NULL && o->counter ? read_count(o->counter) : -1;

  if (quote != NULL)
    cause = bh__asprintf("killed by signal SIGKILL (Killed), by the "
                         "kernel's OOM killer: the kernel log (dmesg) says "
                         "\"%s\"",
                         quote);
  else if (o != NULL && now > o->kills)
    cause = bh__asprintf("killed by signal SIGKILL (Killed), possibly by "
                         "the OOM killer: the oom_kill count in %s rose by "
                         "%lld while it lived (any process of that cgroup "
                         "counts there)",
                         o->counter, now - o->kills);
  bh__free(quote);
  return cause;
}

void
bh__oom_free(bh__oom *o) {
  if (o == NULL)
    return;
  if (o->kmsg >= 0)
    close(o->kmsg);
  bh__free(o->counter);
  bh__free(o);
}
