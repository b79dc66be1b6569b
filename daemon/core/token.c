/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <sys/random.h>

#include "macro.h"
#include "parse-util.h"
#include "token.h"

static int random_hex(char *ret, size_t n_chars) {
        uint8_t bytes[32];
        size_t n_bytes = (n_chars + 1) / 2;
        static const char hex[] = "0123456789abcdef";

        if (n_bytes > sizeof bytes)
                return -EINVAL;

        for (size_t got = 0; got < n_bytes;) {
                ssize_t k = getrandom(bytes + got, n_bytes - got, 0);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                got += (size_t) k;
        }

        for (size_t i = 0; i < n_chars; i++)
                ret[i] = hex[(bytes[i / 2] >> (i % 2 ? 0 : 4)) & 0xf];
        ret[n_chars] = 0;
        return 0;
}

int token_generate(char ret[TOKEN_LEN + 1]) {
        return random_hex(ret, TOKEN_LEN);
}

int lease_id_generate(char ret[LEASE_ID_LEN + 1]) {
        return random_hex(ret, LEASE_ID_LEN);
}

bool token_equal(const char *a, const char *b) {
        uint8_t diff = 0;

        if (!token_is_valid(a) || !token_is_valid(b))
                return false;

        for (size_t i = 0; i < TOKEN_LEN; i++)
                diff |= (uint8_t) (a[i] ^ b[i]);

        return diff == 0;
}

bool token_is_valid(const char *s) {
        return is_lower_hex_string(s, TOKEN_LEN);
}
