/* turn.c - see turn.h. */
#include "runtime/turn.h"

#include "base/base.h"
#include "runtime/fiber.h"

static _Thread_local uv_prepare_t *hook;
static _Thread_local const bh__turn_output *output;

void
bh__turn_set_output(const bh__turn_output *o) {
  output = o;
}

static void
flush_output(void) {
  if (output != NULL)
    output->flush_all();
}

void
bh__turn_run(void) {
  do {
    /* Output that must leave before any fiber runs (a direct offer's
     * accept, hive/parent.c) goes first, in one write for all of it. */
    if (output != NULL && output->take_urgent())
      flush_output();
    bh__sched_run();
    flush_output();
  } while (bh__sched_pending());
  if (hook != NULL)
    uv_unref((uv_handle_t *)hook);
}

/* Work is queued for the end of this turn: the loop must not end first,
 * even if the callback that queued it closed the last other handle. */
void
bh__turn_pending(void) {
  if (hook != NULL)
    uv_ref((uv_handle_t *)hook);
}

static void
hook_cb(uv_prepare_t *p) {
  (void)p;
  bh__turn_run();
}

int
bh__turn_init(uv_loop_t *loop) {
  int err;

  if (hook != NULL)
    return 0;
  hook = bh__malloc(sizeof(*hook));
  if (hook == NULL)
    return BH_ENOMEM;
  err = uv_prepare_init(loop, hook);
  if (err == 0)
    err = uv_prepare_start(hook, hook_cb);
  if (err != 0) {
    bh__free(hook);
    hook = NULL;
    return err;
  }
  uv_unref((uv_handle_t *)hook);
  return 0;
}

static void
hook_closed(uv_handle_t *h) {
  bh__free(h);
}

bool
bh__turn_active(void) {
  return hook != NULL;
}

void
bh__turn_close(void) {
  if (hook == NULL)
    return;
  uv_close((uv_handle_t *)hook, hook_closed);
  hook = NULL;
}

void
bh__turn_forget(void) {
  /* The parent's loop is never run here; its hook's memory is ours. */
  bh__free(hook);
  hook = NULL;
  if (output != NULL)
    output->forget_all();
  bh__sched_reset_after_fork();
}

static void
close_walk(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

void
bh__loop_finish(uv_loop_t *loop) {
  uv_run(loop, UV_RUN_DEFAULT);
  uv_walk(loop, close_walk, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  bh__alloc_trim();
}

void
bh__turn_finish(uv_loop_t *loop) {
  bh__turn_close();
  bh__loop_finish(loop);
}
