/* og_prom.h: the Prometheus text exposition format (version 0.0.4), pure:
 * label values escaped as the format requires, metric and label names
 * checked, and sample values written the way promtool accepts. The glue
 * (mod_ocsp_guard_metrics.c) decides what is exported. Core (APR only). */
#ifndef OG_PROM_H
#define OG_PROM_H

#include <apr_pools.h>
#include <apr_time.h>

/* A label value with backslash, double quote and line feed escaped (\\, \",
 * \n) and any other control byte or invalid UTF-8 byte replaced by '?'. */
const char *og_prom_label_value(apr_pool_t *p, const char *s);

/* Is `name` a valid metric or label name ([a-zA-Z_:][a-zA-Z0-9_:]*; labels
 * without ':')? */
int og_prom_valid_name(const char *name, int label);

/* A time as seconds since the epoch with millisecond precision ("0" for 0). */
const char *og_prom_seconds(apr_pool_t *p, apr_time_t t);

#endif /* OG_PROM_H */
