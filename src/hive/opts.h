/* opts.h - the ranges of bh_run_opts and bh_spawn_opts (opts.c). */
#ifndef BH_OPTS_H
#define BH_OPTS_H

#include "base/base.h"
#include "hive/wcfg.h"

/* Checks every option against its range (include/beehive.h). Returns 0,
 * or BH_EINVAL with why (len bytes) saying "bh_run: <option> <value> is
 * out of range: it must be <range>" or what is missing. */
int bh__run_opts_check(const bh_run_opts *o, char *why, size_t len);
/* The same for o (not NULL); who prefixes the message. */
int bh__spawn_opts_check(const bh__spawn_opts *o, const char *who,
                         char *why, size_t len);

#endif
