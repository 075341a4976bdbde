/* main.c: strata's entry point: reads the configuration, starts the
 * database sidecar (readiness probe) and runs the server until
 * SIGTERM/SIGINT. */
#include "base/conf.h"
#include "db/readiness.h"
#include "lua/conf_file.h"
#include "net/server.h"
#include "obs/log.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
    fprintf(stderr, "usage: strata [-c conf/strata.lua]\n"
                    "  every key of the file can be overridden by STRATA_<KEY>; DATABASE_URL too\n");
}

int main(int argc, char **argv)
{
    const char *conf_path = getenv("STRATA_CONF");
    if (!conf_path || !*conf_path)
        conf_path = "conf/strata.lua";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            conf_path = argv[++i];
        } else {
            usage();
            return 2;
        }
    }
    /* A client that goes away mid-write must not kill the process; the
     * signals the server handles are taken by its event loop. */
    signal(SIGPIPE, SIG_IGN);

    strata_conf conf;
    char err[512];
    if (conf_file_load(&conf, conf_path, err, sizeof err) < 0) {
        log_eventf("error", "configuration: %s", err);
        conf_free(&conf);
        return 1;
    }
    readiness *ready =
        readiness_start(conf.database_url, conf.sql_dir, conf.ready_interval_ms, err, sizeof err);
    if (!ready) {
        log_event("error", err, NULL);
        conf_free(&conf);
        return 1;
    }
    int rc = server_run(&conf, ready);
    readiness_stop(ready);
    conf_free(&conf);
    return rc == 0 ? 0 : 1;
}
