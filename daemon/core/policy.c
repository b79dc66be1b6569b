/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fnmatch.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>

#include "memlock.h"
#include "policy.h"

typedef enum WhoKind {
        WHO_ANYONE,
        WHO_UID,
        WHO_GID,
        WHO_UNIT,
        WHO_CGROUP,
} WhoKind;

typedef enum MatchKind {
        MATCH_GROUP,
        MATCH_PCI,
        MATCH_CLASS,
        MATCH_VENDOR,
        MATCH_DEVICE,
} MatchKind;

typedef struct Match {
        MatchKind kind;
        unsigned group;
        bool any_group;
        char pci[64];
        uint32_t class_prefix;
        unsigned class_digits;   /* hex digits given, 2..6 */
        uint16_t vendor;
        uint16_t device;
} Match;

#define MATCHES_MAX 8

typedef struct Rule {
        bool never;
        bool standby;            /* "standby MATCH...": see the standby section below */
        bool memlock;            /* "memlock WHO [max=SIZE]" */
        bool revoke;             /* "revoke WHO [force]" */
        bool variant;            /* "variant MATCH...": a VFIO variant driver, when one matches */
        bool force;
        bool host_critical;      /* "allow WHO pci=ADDR host-critical" */
        bool owner_any;          /* "owner-any WHO" */
        uint64_t memlock_max;    /* UINT64_MAX: no ceiling */
        WhoKind who;
        uint32_t who_id;
        char who_name[128];      /* WHO_UNIT: a glob; WHO_CGROUP: a path */
        Match matches[MATCHES_MAX];
        size_t n_matches;
        char text[160];          /* "never class=0x01", for messages */
        char where[96];          /* "policy.conf:3", "the built-in policy" */
} Rule;

struct Policy {
        Rule *rules;
        size_t n_rules;
};

static void set_error(char **ret_error, const char *fmt, ...) _printf_(2, 3);
static void set_error(char **ret_error, const char *fmt, ...) {
        va_list ap;

        if (!ret_error)
                return;
        va_start(ap, fmt);
        if (vasprintf(ret_error, fmt, ap) < 0)
                *ret_error = NULL;
        va_end(ap);
}

const char policy_default_text[] =
        "# Built-in default: root only; never a mass storage controller (it may hold the host's disks).\n"
        "never class=0x01\n";

Policy *policy_free(Policy *p) {
        if (!p)
                return NULL;
        free(p->rules);
        free(p);
        return NULL;
}

static int parse_hex(const char *s, unsigned max_digits, uint32_t *ret, unsigned *ret_digits) {
        size_t n;
        char *end;
        unsigned long v;

        if (strncmp(s, "0x", 2) != 0)
                return -EINVAL;
        s += 2;
        n = strspn(s, "0123456789abcdefABCDEF");
        if (n == 0 || n > max_digits || s[n] != 0)
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 16);
        if (errno != 0 || *end != 0)
                return -EINVAL;
        *ret = (uint32_t) v;
        if (ret_digits)
                *ret_digits = (unsigned) n;
        return 0;
}

static int parse_match(const char *word, Match *m) {
        const char *v;

        if ((v = startswith_word(word, "iommu-group="))) {
                m->kind = MATCH_GROUP;
                if (streq(v, "*")) {
                        m->any_group = true;
                        return 0;
                }
                char *end;
                errno = 0;
                unsigned long n = strtoul(v, &end, 10);
                if (errno != 0 || *end != 0 || end == v || n > UINT32_MAX)
                        return -EINVAL;
                m->group = (unsigned) n;
                return 0;
        }
        if ((v = startswith_word(word, "pci="))) {
                m->kind = MATCH_PCI;
                if (isempty(v) || strlen(v) >= sizeof m->pci)
                        return -EINVAL;
                strcpy(m->pci, v);
                return 0;
        }
        if ((v = startswith_word(word, "class="))) {
                m->kind = MATCH_CLASS;
                if (parse_hex(v, 6, &m->class_prefix, &m->class_digits) < 0)
                        return -EINVAL;
                return 0;
        }
        if ((v = startswith_word(word, "vendor="))) {
                uint32_t x;
                m->kind = MATCH_VENDOR;
                if (parse_hex(v, 4, &x, NULL) < 0)
                        return -EINVAL;
                m->vendor = (uint16_t) x;
                return 0;
        }
        if ((v = startswith_word(word, "device="))) {
                char vendor[16];
                const char *colon = strchr(v, ':');
                uint32_t x, y;

                m->kind = MATCH_DEVICE;
                if (!colon || (size_t) (colon - v) >= sizeof vendor)
                        return -EINVAL;
                memcpy(vendor, v, (size_t) (colon - v));
                vendor[colon - v] = 0;
                if (parse_hex(vendor, 4, &x, NULL) < 0 || parse_hex(colon + 1, 4, &y, NULL) < 0)
                        return -EINVAL;
                m->vendor = (uint16_t) x;
                m->device = (uint16_t) y;
                return 0;
        }
        return -EINVAL;
}

static int parse_who(const char *word, Rule *r) {
        const char *v;
        char *end;
        unsigned long n;

        if (streq(word, "anyone")) {
                r->who = WHO_ANYONE;
                return 0;
        }
        if ((v = startswith_word(word, "uid=")) || (v = startswith_word(word, "gid="))) {
                r->who = word[0] == 'u' ? WHO_UID : WHO_GID;
                errno = 0;
                n = strtoul(v, &end, 10);
                if (errno != 0 || *end != 0 || end == v || n >= UINT32_MAX)
                        return -EINVAL;
                r->who_id = (uint32_t) n;
                return 0;
        }
        if ((v = startswith_word(word, "user="))) {
                struct passwd *pw = getpwnam(v);
                if (!pw)
                        return -ESRCH;
                r->who = WHO_UID;
                r->who_id = pw->pw_uid;
                return 0;
        }
        if ((v = startswith_word(word, "unit="))) {
                if (isempty(v) || strlen(v) >= sizeof r->who_name || strchr(v, '/'))
                        return -EINVAL;
                r->who = WHO_UNIT;
                strcpy(r->who_name, v);
                return 0;
        }
        if ((v = startswith_word(word, "cgroup="))) {
                size_t l = strlen(v);
                if (l == 0 || v[0] != '/' || l >= sizeof r->who_name || strstr(v, "/../") || strstr(v, "//"))
                        return -EINVAL;
                r->who = WHO_CGROUP;
                strcpy(r->who_name, v);
                /* "/a/b/" and "/a/b" are one cgroup. */
                while (l > 1 && r->who_name[l - 1] == '/')
                        r->who_name[--l] = 0;
                return 0;
        }
        if ((v = startswith_word(word, "unixgroup="))) {
                struct group *gr = getgrnam(v);
                if (!gr)
                        return -ESRCH;
                r->who = WHO_GID;
                r->who_id = gr->gr_gid;
                return 0;
        }
        return -EINVAL;
}

int policy_parse(const char *text, const char *origin, Policy **ret, char **ret_error) {
        _cleanup_(policy_freep) Policy *p = NULL;
        unsigned line_no = 0;
        const char *line = text;

        p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;

        while (line && *line) {
                const char *eol = strchr(line, '\n');
                size_t len = eol ? (size_t) (eol - line) : strlen(line);
                char buf[512], *words[MATCHES_MAX + 3], *save = NULL, *w;
                size_t n_words = 0;
                Rule r = {};
                int k;

                line_no++;
                if (len >= sizeof buf) {
                        set_error(ret_error, "%s:%u: line too long", origin, line_no);
                        return -EINVAL;
                }
                memcpy(buf, line, len);
                buf[len] = 0;
                line = eol ? eol + 1 : NULL;

                char *hash = strchr(buf, '#');
                if (hash)
                        *hash = 0;

                for (w = strtok_r(buf, " \t\r", &save); w; w = strtok_r(NULL, " \t\r", &save)) {
                        if (n_words >= ELEMENTSOF(words)) {
                                set_error(ret_error, "%s:%u: too many words (at most %u matches)",
                                                origin, line_no, MATCHES_MAX);
                                return -EINVAL;
                        }
                        words[n_words++] = w;
                }
                if (n_words == 0)
                        continue;

                size_t first_match;
                if (streq(words[0], "memlock")) {
                        const char *v;

                        r.memlock = true;
                        r.memlock_max = UINT64_MAX;
                        if (n_words < 2 || n_words > 3 || parse_who(words[1], &r) < 0) {
                                set_error(ret_error, "%s:%u: 'memlock' wants WHO [max=SIZE]", origin, line_no);
                                return -EINVAL;
                        }
                        if (n_words == 3 && (!(v = startswith_word(words[2], "max=")) ||
                                             memlock_parse_size(v, &r.memlock_max) < 0)) {
                                set_error(ret_error, "%s:%u: bad \"%s\" (want max=SIZE, like max=64G)", origin,
                                          line_no, words[2]);
                                return -EINVAL;
                        }
                        first_match = n_words; /* no MATCHes */
                } else if (streq(words[0], "revoke")) {
                        r.revoke = true;
                        if (n_words < 2 || n_words > 3 || parse_who(words[1], &r) < 0 ||
                            (n_words == 3 && !streq(words[2], "force"))) {
                                set_error(ret_error, "%s:%u: 'revoke' wants WHO [force]", origin, line_no);
                                return -EINVAL;
                        }
                        r.force = n_words == 3;
                        first_match = n_words; /* no MATCHes */
                } else if (streq(words[0], "owner-any")) {
                        r.owner_any = true;
                        if (n_words != 2 || parse_who(words[1], &r) < 0) {
                                set_error(ret_error, "%s:%u: 'owner-any' wants WHO (uid=N, user=NAME, gid=N, "
                                          "unixgroup=NAME or anyone) and nothing else", origin, line_no);
                                return -EINVAL;
                        }
                        first_match = n_words; /* no MATCHes */
                } else if (streq(words[0], "never")) {
                        r.never = true;
                        first_match = 1;
                } else if (streq(words[0], "variant")) {
                        r.variant = true;
                        first_match = 1;
                } else if (streq(words[0], "standby")) {
                        r.standby = true;
                        first_match = 1;
                } else if (streq(words[0], "allow")) {
                        if (n_words < 2) {
                                set_error(ret_error, "%s:%u: 'allow' needs WHO and a MATCH", origin,
                                                line_no);
                                return -EINVAL;
                        }
                        k = parse_who(words[1], &r);
                        if (k == -ESRCH) {
                                set_error(ret_error, "%s:%u: unknown user or group in \"%s\"", origin,
                                                line_no, words[1]);
                                return -EINVAL;
                        }
                        if (k < 0) {
                                set_error(ret_error,
                                                "%s:%u: bad WHO \"%s\" (want uid=N, user=NAME, gid=N, "
                                                "unixgroup=NAME, unit=GLOB, cgroup=/PATH or anyone)",
                                                origin, line_no, words[1]);
                                return -EINVAL;
                        }
                        first_match = 2;
                } else {
                        set_error(ret_error, "%s:%u: unknown rule \"%s\" (want allow, never, memlock, revoke, variant, "
                                  "owner-any or standby)", origin, line_no, words[0]);
                        return -EINVAL;
                }

                if (!r.never && !r.memlock && !r.revoke && !r.variant && !r.owner_any && !r.standby &&
                    streq(words[n_words - 1], "host-critical")) {
                        r.host_critical = true;
                        n_words--;
                }
                if (!r.memlock && !r.revoke && !r.owner_any && n_words <= first_match) {
                        set_error(ret_error, "%s:%u: '%s' needs at least one MATCH", origin, line_no,
                                        words[0]);
                        return -EINVAL;
                }
                for (size_t i = first_match; i < n_words; i++) {
                        if (r.n_matches >= MATCHES_MAX || parse_match(words[i], &r.matches[r.n_matches]) < 0) {
                                set_error(ret_error,
                                                "%s:%u: bad MATCH \"%s\" (want iommu-group=N, pci=GLOB, "
                                                "class=0xHEX, vendor=0xVVVV or device=0xVVVV:0xDDDD)",
                                                origin, line_no, words[i]);
                                return -EINVAL;
                        }
                        r.n_matches++;
                }

                if (r.host_critical) {
                        bool exact = false;
                        for (size_t i = 0; i < r.n_matches; i++)
                                if (r.matches[i].kind == MATCH_PCI && strlen(r.matches[i].pci) == 12 &&
                                    !strpbrk(r.matches[i].pci, "*?[\\"))
                                        exact = true;
                        if (!exact) {
                                set_error(ret_error, "%s:%u: 'host-critical' lifts the host's protection only "
                                          "for a device named by its whole address (pci=0000:00:02.0)", origin,
                                          line_no);
                                return -EINVAL;
                        }
                }

                /* Keep the rule's text for messages. */
                size_t off = 0;
                r.text[0] = 0;
                for (size_t i = 0; i < n_words && off < sizeof r.text; i++)
                        off += (size_t) snprintf(r.text + off, sizeof r.text - off, "%s%s", i > 0 ? " " : "",
                                                 words[i]);
                if (r.host_critical && off < sizeof r.text)
                        (void) snprintf(r.text + off, sizeof r.text - off, " host-critical");
                if (streq(origin, "built-in policy"))
                        (void) snprintf(r.where, sizeof r.where, "the built-in policy");
                else
                        (void) snprintf(r.where, sizeof r.where, "%.80s:%u", origin, line_no);

                Rule *n = reallocarray(p->rules, p->n_rules + 1, sizeof *n);
                if (!n)
                        return -ENOMEM;
                p->rules = n;
                p->rules[p->n_rules++] = r;
        }

        *ret = TAKE_PTR(p);
        return 0;
}

int policy_load(const char *path, Policy **ret, char **ret_error) {
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        FILE *f;
        int r;

        if (!path)
                return policy_parse(policy_default_text, "built-in policy", ret, ret_error);

        f = fopen(path, "re");
        if (!f)
                return -errno;

        FILE *mem = open_memstream(&text, &size);
        if (!mem) {
                fclose(f);
                return -ENOMEM;
        }
        char buf[4096];
        size_t k;
        while ((k = fread(buf, 1, sizeof buf, f)) > 0)
                fwrite(buf, 1, k, mem);
        r = ferror(f) ? -EIO : 0;
        fclose(f);
        if (fclose(mem) != 0)
                return -ENOMEM;
        if (r < 0)
                return r;
        if (memchr(text, 0, size)) {
                set_error(ret_error, "%s: contains a NUL byte", path);
                return -EINVAL;
        }

        return policy_parse(text, path, ret, ret_error);
}

const char *pci_class_words(uint32_t class_code) {
        static const struct {
                uint32_t prefix;
                unsigned digits;
                const char *words;
        } table[] = {
                { 0x0106, 4, "a SATA controller" },
                { 0x0108, 4, "an NVMe controller" },
                { 0x01, 2, "a mass storage controller" },
                { 0x0200, 4, "an Ethernet controller" },
                { 0x02, 2, "a network controller" },
                { 0x0300, 4, "a VGA display controller" },
                { 0x03, 2, "a display controller" },
                { 0x04, 2, "a multimedia controller" },
                { 0x05, 2, "a memory controller" },
                { 0x0600, 4, "the host bridge" },
                { 0x0601, 4, "the ISA/LPC bridge" },
                { 0x0604, 4, "a PCI bridge" },
                { 0x0609, 4, "a PCI bridge" },
                { 0x0607, 4, "a CardBus bridge" },
                { 0x06, 2, "a bridge" },
                { 0x0c03, 4, "a USB controller" },
                { 0x0c05, 4, "an SMBus controller" },
                { 0x0c, 2, "a serial bus controller" },
                { 0x0b40, 4, "a co-processor" },
        };
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if ((class_code >> (4 * (6 - table[i].digits))) == table[i].prefix)
                        return table[i].words;
        return NULL;
}

static bool match_device(const Match *m, const HostDevice *d) {
        switch (m->kind) {
        case MATCH_GROUP:
                return m->any_group || m->group == d->group;
        case MATCH_PCI:
                return fnmatch(m->pci, d->address, 0) == 0;
        case MATCH_CLASS: {
                unsigned shift = 4 * (6 - m->class_digits);
                return (d->class_code >> shift) == m->class_prefix;
        }
        case MATCH_VENDOR:
                return d->vendor == m->vendor;
        case MATCH_DEVICE:
                return d->vendor == m->vendor && d->device == m->device;
        }
        return false;
}

static bool rule_matches_device(const Rule *r, const HostDevice *d) {
        for (size_t i = 0; i < r->n_matches; i++)
                if (!match_device(&r->matches[i], d))
                        return false;
        return true;
}

static bool rule_matches_group(const Rule *r, unsigned group) {
        /* A rule speaks for a whole group when its only matches are iommu-group ones. */
        for (size_t i = 0; i < r->n_matches; i++)
                if (r->matches[i].kind != MATCH_GROUP ||
                    (!r->matches[i].any_group && r->matches[i].group != group))
                        return false;
        return true;
}

int policy_unit_of_cgroup(const char *cgroup, char *ret, size_t size) {
        const char *p = cgroup;

        if (isempty(cgroup))
                return -ENOENT;
        while (*p) {
                size_t l;

                p += strspn(p, "/");
                l = strcspn(p, "/");
                if (l == 0)
                        break;
                if (!(l > 6 && strncmp(p + l - 6, ".slice", 6) == 0)) {
                        if (l >= size)
                                return -ENAMETOOLONG;
                        memcpy(ret, p, l);
                        ret[l] = 0;
                        return 0;
                }
                p += l;
        }
        return -ENOENT;
}

/* An allow rule: what none of the other kinds of rule is. The one place that says so. */
static bool rule_is_allow(const Rule *r) {
        return !r->never && !r->memlock && !r->revoke && !r->variant && !r->owner_any && !r->standby;
}

static bool who_matches(const Rule *r, const PolicySubject *s) {
        switch (r->who) {
        case WHO_ANYONE:
                return true;
        case WHO_UNIT: {
                char unit[256];
                return policy_unit_of_cgroup(s->cgroup, unit, sizeof unit) >= 0 &&
                       fnmatch(r->who_name, unit, 0) == 0;
        }
        case WHO_CGROUP: {
                size_t l = strlen(r->who_name);
                if (!s->cgroup)
                        return false;
                if (streq(r->who_name, "/"))
                        return true;
                return strncmp(s->cgroup, r->who_name, l) == 0 && (s->cgroup[l] == 0 || s->cgroup[l] == '/');
        }
        case WHO_UID:
                return s->uid == r->who_id;
        case WHO_GID:
                if (s->gid == r->who_id)
                        return true;
                for (size_t i = 0; i < s->n_gids; i++)
                        if (s->gids[i] == r->who_id)
                                return true;
                return false;
        }
        return false;
}

/* What the rule says the device is: the words of its class match, or of the device's class. */
static const char *rule_device_words(const Rule *r, const HostDevice *d) {
        for (size_t i = 0; i < r->n_matches; i++)
                if (r->matches[i].kind == MATCH_CLASS) {
                        const char *w = pci_class_words(r->matches[i].class_prefix
                                                        << (4 * (6 - r->matches[i].class_digits)));
                        if (w)
                                return w;
                }
        return pci_class_words(d->class_code);
}

bool policy_device_never(const Policy *p, const HostDevice *d, char *note, size_t size) {
        for (size_t i = 0; i < p->n_rules; i++)
                if (p->rules[i].never && rule_matches_device(&p->rules[i], d)) {
                        const char *words = rule_device_words(&p->rules[i], d);
                        if (note && words)
                                snprintf(note, size, "%s is %s, never handed out (rule \"%s\", %s)", d->address,
                                         words, p->rules[i].text, p->rules[i].where);
                        else if (note)
                                snprintf(note, size, "%s is never handed out (rule \"%s\", %s)", d->address,
                                         p->rules[i].text, p->rules[i].where);
                        return true;
                }
        return false;
}

bool policy_device_variant(const Policy *p, const HostDevice *d) {
        for (size_t i = 0; i < p->n_rules; i++)
                if (p->rules[i].variant && rule_matches_device(&p->rules[i], d))
                        return true;
        return false;
}

bool policy_lifts_host_critical(const Policy *p, const PolicySubject *s, const HostDevice *d) {
        for (size_t i = 0; i < p->n_rules; i++) {
                const Rule *r = &p->rules[i];
                if (r->host_critical && (!s || who_matches(r, s)) && rule_matches_device(r, d))
                        return true;
        }
        return false;
}

int policy_check_revoke(const Policy *p, const PolicySubject *s, bool force, char *msg, size_t size) {
        bool allowed = s->uid == 0, forced = s->uid == 0;

        for (size_t i = 0; i < p->n_rules; i++)
                if (p->rules[i].revoke && who_matches(&p->rules[i], s)) {
                        allowed = true;
                        forced = forced || p->rules[i].force;
                }
        if (!allowed) {
                snprintf(msg, size, "uid %u may not revoke leases: no revoke rule covers it", (unsigned) s->uid);
                return -EPERM;
        }
        if (force && !forced) {
                snprintf(msg, size, "uid %u may revoke leases but not by force: no \"revoke ... force\" rule "
                         "covers it", (unsigned) s->uid);
                return -EPERM;
        }
        return 0;
}

int policy_check_memlock(const Policy *p, const PolicySubject *s, uint64_t *ret_max, char *msg, size_t size) {
        uint64_t max = 0;
        bool allowed = s->uid == 0;

        if (allowed)
                max = UINT64_MAX;
        for (size_t i = 0; i < p->n_rules; i++)
                if (p->rules[i].memlock && who_matches(&p->rules[i], s)) {
                        allowed = true;
                        max = MAX(max, p->rules[i].memlock_max);
                }
        if (!allowed) {
                snprintf(msg, size, "uid %u may not have groupd raise its RLIMIT_MEMLOCK: no memlock rule covers it",
                         (unsigned) s->uid);
                return -EPERM;
        }
        *ret_max = max;
        return 0;
}

int policy_check_owner_any(const Policy *p, const PolicySubject *s, char *rule, size_t size) {
        if (s->uid == 0) {
                snprintf(rule, size, "root");
                return 0;
        }
        for (size_t i = 0; i < p->n_rules; i++)
                if (p->rules[i].owner_any && who_matches(&p->rules[i], s)) {
                        snprintf(rule, size, "rule \"%s\", %s", p->rules[i].text, p->rules[i].where);
                        return 0;
                }
        snprintf(rule, size, "uid %u has no owner-any rule", (unsigned) s->uid);
        return -EPERM;
}

int policy_check_group(const Policy *p, const PolicySubject *s, const HostGroup *g, char *msg, size_t size) {
        for (size_t i = 0; i < g->n_devices; i++)
                if (policy_device_never(p, &g->devices[i], msg, size))
                        return -EPERM;

        if (s->uid == 0)
                return 0;

        for (size_t i = 0; i < p->n_rules; i++)
                if (rule_is_allow(&p->rules[i]) && who_matches(&p->rules[i], s) &&
                    rule_matches_group(&p->rules[i], g->id))
                        return 0;

        for (size_t j = 0; j < g->n_devices; j++) {
                bool ok = false;
                for (size_t i = 0; i < p->n_rules && !ok; i++)
                        ok = rule_is_allow(&p->rules[i]) && who_matches(&p->rules[i], s) &&
                             rule_matches_device(&p->rules[i], &g->devices[j]);
                if (!ok) {
                        snprintf(msg, size, "uid %u may not acquire group %u: no allow rule covers %s",
                                 (unsigned) s->uid, g->id, g->devices[j].address);
                        return -EPERM;
                }
        }
        if (g->n_devices == 0) {
                snprintf(msg, size, "uid %u may not acquire group %u", (unsigned) s->uid, g->id);
                return -EPERM;
        }
        return 0;
}

/* ---------------------------------------------------------------- standby (issue 16)
 * "standby MATCH...": devices matching every MATCH stay on vfio-pci while no lease holds them (bound at
 * start, kept there at release), so that acquiring them is only opening and attaching. A standby rule
 * grants nothing: it is not an allow rule, and a never rule still forbids. */

bool policy_has_standby(const Policy *p) {
        for (size_t i = 0; i < p->n_rules; i++)
                if (p->rules[i].standby)
                        return true;
        return false;
}

bool policy_device_standby(const Policy *p, const HostDevice *d, char *note, size_t size) {
        for (size_t i = 0; i < p->n_rules; i++)
                if (p->rules[i].standby && rule_matches_device(&p->rules[i], d)) {
                        if (note)
                                snprintf(note, size, "%s is on standby: kept on vfio-pci while no lease holds "
                                         "it (%s: %s)", d->address, p->rules[i].where, p->rules[i].text);
                        return true;
                }
        return false;
}
