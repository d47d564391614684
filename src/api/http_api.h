/* http_api.h - the HTTP client's entry points that other api/ files
 * share (http_api.c; s3_api.c signs and sends through them). */
#ifndef BH_HTTP_API_H
#define BH_HTTP_API_H

#include "hive/task.h"
#include "io/http.h"

/* Starts a transfer on t's bee session and waits for it. Returns 0 with
 * *x done (its result may hold a transfer error), or an error recorded on
 * t (exception type `type`) with *x NULL. */
int bh__http_run(bh_task *t, const bh__xfer_req *rq, const char *type,
                 bh__xfer **x);
/* Moves the response of done transfer x into a new *out. 0 or
 * BH_ENOMEM. */
int bh__http_resp_take(bh__xfer *x, bh_http_resp **out);

#endif
