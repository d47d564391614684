/* send.h - every message of the protocol sent on a channel in one call:
 * the frame is packed into the channel's output (its blob queue and hold
 * kept by chan.c) and the turn flushes it. Each returns what the encoder
 * does (wire.h: 0, BH_ENOMEM, BH_EMSGSIZE, BH_EINVAL), with nothing sent
 * on failure. max_frame is the channel's. */
#ifndef BH_SEND_H
#define BH_SEND_H

#include "transport/chan.h"
#include "wire/wire.h"

/* new_task (an offer), task_accepted, task_denied, task_taken,
 * cancel_task. */
int bh__send_simple(bh__chan *c, bh__msg_type type, int64_t task_id);
/* task_accepted {started: true}: urgent, so that it leaves before the
 * task's handler runs (PROTOCOL.md section 5.1). */
int bh__send_accepted_started(bh__chan *c, int64_t task_id);
/* task_info (type BH__MSG_TASK_INFO) or a direct offer (BH__MSG_NEW_TASK)
 * of call. Its middle-sized bins go out from where they lie in `hold`
 * (NULL: copied), which the channel holds until they are written. */
int bh__send_call(bh__chan *c, bh__msg_type type, int64_t task_id,
                  const char *name, const bh__wire_call *call,
                  bh_value *hold);
/* task_done; hold as for bh__send_call. */
int bh__send_task_done(bh__chan *c, int64_t task_id, const bh__wire_done *d,
                       bh_value *hold);
int bh__send_die(bh__chan *c);
/* The bootstrap frame (docs/PROTOCOL.md section 6): the first a joined
 * worker reads (section 14). Its bins travel inline. */
int bh__send_bootstrap(bh__chan *c, const char *cls, int64_t id,
                       const msgpack_object *args,
                       const msgpack_object *kwargs,
                       const msgpack_object *config);
int bh__send_dead_normal(bh__chan *c, const char *exit_code);
int bh__send_dead_killed(bh__chan *c, const msgpack_object *exception,
                         const msgpack_object *traceback);

#endif
