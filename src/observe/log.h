/* log.h - log.c internals. */
#ifndef BH_LOG_H
#define BH_LOG_H

#include "base/base.h"

/* Logs `obj` rendered as text at `level`, prefixed by `label`. */
void bh__log_object(bh_logger *lg, bh_log_level level, const char *label,
                    const msgpack_object *obj);

#endif
