/* mod_ocsp_guard.h: what other modules may include from mod_ocsp_guard.
 * Only the version for now; the module's internals live in
 * mod_ocsp_guard_private.h and the og_*.h core headers. */
#ifndef MOD_OCSP_GUARD_H
#define MOD_OCSP_GUARD_H

#define MOD_OCSP_GUARD_VERSION "0.2.0"
#define MOD_OCSP_GUARD_VERSION_NUM 0x000100

#endif /* MOD_OCSP_GUARD_H */
