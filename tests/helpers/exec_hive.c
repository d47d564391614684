/* exec_hive.c - a program whose workers are started by exec (BH_START_EXEC):
 * it runs one hive and prints what its worker saw, one "key value" a line.
 * Its main() first gives bh_worker_main() the chance to become a worker. */
#include <beehive.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int
whoami(bh_task *t) {
  char exe[64] = "";
  FILE *f = fopen("/proc/self/cmdline", "r");
  int64_t tag = -1;
  int64_t *st = bh_bee_state(bh_task_bee(t));

  if (f != NULL) {
    if (fgets(exe, sizeof(exe), f) == NULL)
      exe[0] = '\0';
    fclose(f);
  }
  if (st != NULL)
    tag = *st;
  return bh_return(t, "[I I s I I]", (int64_t)getpid(), (int64_t)getppid(),
                   exe, tag, bh_bee_id(bh_task_bee(t)));
}

static int
w_init(bh_bee *bee, const msgpack_object *args, const msgpack_object *kw) {
  (void)kw;
  return bh_unpack(args, NULL, 0, "[I]", (int64_t *)bh_bee_state(bee));
}

static int
relay(bh_task *t) {
  bh_result *r;
  int rc = bh_delegate(t, &r, "whoami", NULL);

  if (rc == 0)
    rc = bh_return_object(t, bh_result_value(r));
  else if (r != NULL)
    rc = bh_raise_result(t, r);
  bh_result_free(r);
  return rc;
}

static const bh_task_def wtasks[] = {{"whoami", whoami}, {NULL, NULL}};
static const bh_class worker = {.name = "ExecWorker", .tasks = wtasks,
                                .state_size = sizeof(int64_t),
                                .init = w_init};
static const bh_task_def qtasks[] = {{"relay", relay}, {NULL, NULL}};
static const bh_class queen = {.name = "ExecQueen", .tasks = qtasks,
                               .worker_class = &worker};
static const bh_class *const classes[] = {&worker, &queen, NULL};

int
main(int argc, char **argv) {
  bh_value *wargs = bh_value_pack(NULL, "[I]", (int64_t)4242);
  bh_run_opts o = {.queen_class = &queen, .task_name = "relay",
                   .start = BH_START_EXEC, .worker_init_args = wargs};
  int64_t pid, ppid, tag, id;
  char exe[64];
  bh_result *r;
  int rc;

  bh_worker_main(argc, argv, classes);
  rc = bh_run(&o, &r);
  if (rc != 0 || bh_result_unpack(r, NULL, 0, "[I I s I I]", &pid, &ppid,
                                  exe, sizeof(exe), &tag, &id) != 0) {
    char text[2048];

    bh_result_format(r, text, sizeof(text));
    fprintf(stderr, "exec_hive: %s\n", text);
    return 1;
  }
  printf("self %lld\nworker %lld\nparent %lld\nexe %s\ntag %lld\nid %lld\n",
         (long long)getpid(), (long long)pid, (long long)ppid, exe,
         (long long)tag, (long long)id);
  bh_result_free(r);
  bh_value_free(wargs);
  return 0;
}
