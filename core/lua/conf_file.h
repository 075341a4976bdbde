/* conf_file.h: reads conf/strata.lua, the configuration file, into a
 * strata_conf (base/conf.h).  The file is a Lua chunk returning a table, so
 * reading it is the Lua room's work; conf.c decides what each value means. */
#ifndef STRATA_CONF_FILE_H
#define STRATA_CONF_FILE_H

#include "base/conf.h"

#include <stddef.h>

/* Sets the defaults, the keys of the file at `path`, then the environment
 * (conf_init, conf_set/conf_add per key, conf_finish).  On failure returns
 * -1 and writes a message naming the file or variable and the key into
 * err; conf_free is safe on the partly loaded conf. */
int conf_file_load(strata_conf *conf, const char *path, char *err, size_t errlen);

#endif
