/* result.h - bh_result as the delegating bee records it (result.c). */
#ifndef BH_RESULT_H
#define BH_RESULT_H

#include "base/base.h"
#include "wire/wire.h"

/* Builds a result from a task_done-like map (takes ownership of v). */
bh_result *bh__result_new(bh_value *v, int64_t child_id);
/* Builds a raised result {status, exception {type, message}, traceback,
 * other_details} or a cancelled one {status, reason}. */
bh_result *bh__result_make(bh_status st, int64_t child_id, const char *type,
                           const char *message, const char *reason,
                           const msgpack_object *traceback,
                           const msgpack_object *details);
/* A raised result wrapping what child child_id said, as the original
 * wraps a delegated task's failure: exception {type, msg}, a traceback of
 * tb_line, other_details {child_id, key: obj} (key "cause" or
 * "reason"). */
bh_result *bh__result_wrap(int64_t child_id, const char *tb_line,
                           const char *type, const char *msg,
                           const char *key, const msgpack_object *obj);
/* Records the signal that cancelled bh_run (bh_result_signal). */
void bh__result_set_signal(bh_result *r, int signum);
bh_result *bh__result_from_done(const bh__wire_done *d, int64_t child_id);

#endif
