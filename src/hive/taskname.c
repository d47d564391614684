/* taskname.c - a class's tasks by name: the lookup through the base chain
 * and then the built-in tasks, and for a name the class lacks, the message
 * that says so with the nearest name it has ("Did you mean 'echo'?"), so
 * that a typo reads as a typo. */
#include <string.h>

#include "hive/taskname.h"

static bh_task_fn
find_in(const bh_task_def *defs, const char *name) {
  for (; defs != NULL && defs->name != NULL; defs++)
    if (strcmp(defs->name, name) == 0)
      return defs->fn;
  return NULL;
}

bh_task_fn
bh__class_find_task(const bh_class *cls, const bh_task_def *builtins,
                    const char *name) {
  bh_task_fn fn;

  for (; cls != NULL; cls = cls->base)
    if ((fn = find_in(cls->tasks, name)) != NULL)
      return fn;
  return find_in(builtins, name);
}

bool
bh__class_lists_task(const bh_class *cls, const char *name) {
  const bh_task_def *d;

  for (; cls != NULL; cls = cls->base)
    for (d = cls->tasks; d != NULL && d->name != NULL; d++)
      if (strcmp(d->name, name) == 0)
        return true;
  return false;
}

/* True when cls or its bases list any task. */
static bool
lists_any(const bh_class *cls) {
  for (; cls != NULL; cls = cls->base)
    if (cls->tasks != NULL && cls->tasks[0].name != NULL)
      return true;
  return false;
}

bool
bh__class_has_task(const bh_class *cls, const bh_task_def *builtins,
                   const char *name) {
  if (cls->program == NULL)
    return bh__class_find_task(cls, builtins, name) != NULL;
  /* An external program's tasks are what it says they are; busy_status
   * every worker has (PROTOCOL.md section 11). */
  return !lists_any(cls) || bh__class_lists_task(cls, name) ||
         strcmp(name, "busy_status") == 0;
}

/* Names longer than this get no suggestion: the table would not fit. */
#define NAME_MAX_LEN 64

static size_t
min3(size_t a, size_t b, size_t c) {
  size_t m = a < b ? a : b;

  return m < c ? m : c;
}

/* The edit distance of a and b as Python's "Did you mean" weighs it: 2 per
 * insertion, deletion or substitution, 1 for a change of case only. */
static size_t
distance(const char *a, size_t la, const char *b, size_t lb) {
  size_t row[NAME_MAX_LEN + 1], i, j, diag, up;

  for (j = 0; j <= lb; j++)
    row[j] = 2 * j;
  for (i = 1; i <= la; i++) {
    diag = row[0];
    row[0] = 2 * i;
    for (j = 1; j <= lb; j++) {
      char x = a[i - 1], y = b[j - 1];
      size_t sub = x == y ? 0 : (x ^ y) == 0x20 && (x | 0x20) >= 'a' &&
                                         (x | 0x20) <= 'z' ? 1 : 2;

      up = row[j];
      row[j] = min3(up + 2, row[j - 1] + 2, diag + sub);
      diag = up;
    }
  }
  return row[lb];
}

typedef struct nearest {
  const char *name, *best;
  size_t len, best_cost;
} nearest;

static void
consider(nearest *n, const bh_task_def *defs) {
  size_t l, cost;

  for (; defs != NULL && defs->name != NULL; defs++) {
    l = strlen(defs->name);
    if (l > NAME_MAX_LEN)
      continue;
    cost = distance(n->name, n->len, defs->name, l);
    /* Python's cut-off: close enough for a name of this length. */
    if (cost * 3 <= n->len + l + 3 && cost < n->best_cost) {
      n->best = defs->name;
      n->best_cost = cost;
    }
  }
}

char *
bh__class_no_task(const bh_class *cls, const bh_task_def *builtins,
                  const char *name) {
  nearest n = {name, NULL, strlen(name), (size_t)-1};
  const char *cname = cls != NULL && cls->name != NULL ? cls->name : "-";
  const bh_class *c;

  if (n.len <= NAME_MAX_LEN) {
    for (c = cls; c != NULL; c = c->base)
      consider(&n, c->tasks);
    consider(&n, builtins);
  }
  if (n.best == NULL)
    return bh__asprintf("Bee class '%s' has no task '%s'.", cname, name);
  return bh__asprintf("Bee class '%s' has no task '%s'. Did you mean '%s'?",
                      cname, name, n.best);
}
