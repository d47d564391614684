/* taskname.h - a class's tasks by name (taskname.c). */
#ifndef BH_TASKNAME_H
#define BH_TASKNAME_H

#include "base/base.h"

/* The task `name` of cls: through its base chain, then builtins (the
 * bee's: parent.h has them, which sits above the tasks that look them
 * up). */
bh_task_fn bh__class_find_task(const bh_class *cls,
                               const bh_task_def *builtins, const char *name);
/* True when the queen may delegate `name` to workers of cls: a task of
 * its class chain or of builtins; for an external class (bh_class.program),
 * a name its tasks list, busy_status, or any name when it lists none. */
bool bh__class_has_task(const bh_class *cls, const bh_task_def *builtins,
                        const char *name);
/* True when the tasks of cls or its bases name `name`, whatever their
 * fn. */
bool bh__class_lists_task(const bh_class *cls, const char *name);
/* Returns owned (NULL: no memory): "Bee class 'W' has no task 'ecko'.",
 * followed by "Did you mean 'echo'?" when a task of the class or a
 * built-in is near. */
char *bh__class_no_task(const bh_class *cls, const bh_task_def *builtins,
                        const char *name);

#endif
