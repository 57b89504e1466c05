/* fuzz_feature.h: coverage feedback from code libFuzzer cannot see. The
 * HTTP parser and the ASN.1 decoder live in the system's libcrypto, which is
 * not instrumented; the outcome text they lead to (a verdict, OpenSSL's
 * reason) is hashed into an extra-counters array, so that an input reaching
 * a new reason counts as new coverage. A digit, ':' or '=' ends the hashed
 * text: what follows (lengths, seconds, a content type or header the input
 * chose) must not make endless features. Fuzzing only. */
#ifndef FUZZ_FEATURE_H
#define FUZZ_FEATURE_H

#include <stdint.h>

#define FZ_FEATURES 1024

__attribute__((used, section("__libfuzzer_extra_counters")))
static uint8_t fz_features[FZ_FEATURES];

static inline void fz_feature(unsigned salt, const char *text)
{
    uint32_t h = 2166136261u ^ salt;
    const char *c;

    for (c = text; c && *c && *c != ':' && *c != '=' && !(*c >= '0' && *c <= '9'); c++) {
        h = (h ^ (unsigned char)*c) * 16777619u;
    }
    h = (h ^ salt) * 16777619u;
    if (fz_features[h % FZ_FEATURES] < 255) {
        fz_features[h % FZ_FEATURES]++;
    }
}

#endif /* FUZZ_FEATURE_H */
