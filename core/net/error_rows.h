/* error_rows.h: an error_logs row for every 5xx strata answers (seed 003,
 * when error_logging_enabled), built from the request as it is answered:
 * the status, the answer's code and message, the Lua error and traceback
 * (trimmed), the request id, path, method, caller, user agent and address
 * under the privacy settings (log_db.h).  Only strata's own error answers
 * ({"code":...}) are copied, not a body a handler built.  A client's 4xx is not an error.
 * Paths under exclude_sensitive_paths are not logged.  Bodies, tokens and
 * headers other than User-Agent never go into the row.  A handler that
 * raised after its streamed answer's head was out (the client got its
 * status, then a cut stream) is an error too: its row has that status
 * and error_details.stream_cut. */
#ifndef STRATA_ERROR_ROWS_H
#define STRATA_ERROR_ROWS_H

#include "db/log_db.h"
#include "http/request.h"

#include <stddef.h>

/* Queues the row when status >= 500 (or a stream was cut by a Lua error)
 * and the settings ask for it.  body:
 * the answer strata sent (its "code"/"message" when JSON). */
void error_rows_add(log_db *d, const request *r, int status, const char *body, size_t body_len);

#endif
