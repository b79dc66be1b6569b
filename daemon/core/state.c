/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>

#include "fd-util.h"
#include "log.h"
#include "state.h"

static void escape(FILE *f, const char *s) {
        for (; s && *s; s++) {
                unsigned char c = (unsigned char) *s;
                if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    strchr("._:-/@+", c))
                        fputc(c, f);
                else
                        fprintf(f, "%%%02x", c);
        }
}

static int unescape(const char *s, char **ret) {
        size_t n = strlen(s);
        char *out = malloc(n + 1), *o = out;

        if (!out)
                return -ENOMEM;
        for (; *s; s++) {
                if (*s == '%') {
                        unsigned v;
                        if (sscanf(s + 1, "%2x", &v) != 1 || v == 0 || !s[1] || !s[2]) {
                                free(out);
                                return -EBADMSG;
                        }
                        *o++ = (char) v;
                        s += 2;
                } else
                        *o++ = *s;
        }
        *o = 0;
        *ret = out;
        return 0;
}

/* l's lines, formatted again only when what they say changed since the last time: after its acquire only
 * its state, its memlock limit and its node grants change (everything else is written once, before a
 * device moves). */
static int lease_record(Lease *l) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        FILE *f;

        if (l->state_record && l->state_record_state == l->state && l->state_record_memlock == l->memlock &&
            l->state_record_n_grants == l->n_grants)
                return 0;
        f = open_memstream(&buf, &len);
        if (!f)
                return -ENOMEM;
        fprintf(f,
                "lease %s %s %s %s uid=%u gid=%u pid=%u owner-pid=%u owner-start=%" PRIu64
                " conn=%" PRIu64 " iommu=%u since=%" PRIu64 " kvm=%u memlock=%" PRIu64 " label=",
                l->id, l->token, lease_state_to_string(l->state),
                owner_kind_to_string(l->owner_kind), (unsigned) l->uid, (unsigned) l->gid,
                (unsigned) l->pid, (unsigned) l->owner_pid, l->owner_starttime, l->connection_id,
                (unsigned) l->configure_iommu, l->since_usec, (unsigned) l->kvm_registered, l->memlock);
        escape(f, l->label);
        /* Delivery and grants (after the label; keys an older daemon skips). A grant is the node and
         * what it was before: owner, mode, and the ACL's bytes in hex ("-" for none). */
        fprintf(f, " delivery=%s", lease_delivery_to_string(l->delivery));
        if (l->delivery == LEASE_DELIVERY_NODE_GRANT)
                fprintf(f, " grant-uid=%u", (unsigned) l->grant_uid);
        for (size_t i = 0; i < l->n_grants; i++) {
                const HostNodeAccess *b = &l->grants[i].before;
                fputs(" grant=", f);
                escape(f, l->grants[i].node);
                fprintf(f, ",%u,%u,%04o,", (unsigned) b->uid, (unsigned) b->gid, (unsigned) b->mode);
                if (!b->has_acl)
                        fputc('-', f);
                for (size_t k = 0; b->has_acl && k < b->acl_size; k++)
                        fprintf(f, "%02x", b->acl[k]);
        }
        fputc('\n', f);
        for (size_t i = 0; i < l->n_groups; i++)
                fprintf(f, "group %u\n", l->groups[i]);
        for (size_t i = 0; i < l->n_devices; i++) {
                const LeaseDevice *d = &l->devices[i];
                fprintf(f, "device %s %u %s", d->address, d->group, isempty(d->driver) ? "-" : d->driver);
                /* Optional fields after the third: older readers ignore them. */
                if (!isempty(d->override))
                        fprintf(f, " override=%s", d->override);
                if (!isempty(d->vfio_driver))
                        fprintf(f, " vfio=%s", d->vfio_driver);
                if (d->standby)
                        fputs(" standby", f); /* issue 16 */
                fputc('\n', f);
        }
        fprintf(f, "end\n");
        if (fclose(f) != 0 || !buf)
                return -ENOMEM;
        if (l->state_record)
                explicit_bzero(l->state_record, l->state_record_len);
        free(l->state_record);
        l->state_record = TAKE_PTR(buf);
        l->state_record_len = len;
        l->state_record_state = l->state;
        l->state_record_memlock = l->memlock;
        l->state_record_n_grants = l->n_grants;
        return 0;
}

int state_write(const char *path, Lease *leases) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        FILE *f;
        int r = 0;

        if (asprintf(&tmp, "%s.tmp", path) < 0)
                return -ENOMEM;

        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;

        f = fdopen(fd, "we");
        if (!f)
                return -errno;
        fd = -EBADF; /* owned by f now */

        fprintf(f, "groupd-state 1\n");
        for (Lease *l = leases; l; l = l->next) {
                if (l->state == LEASE_RELEASED || !lease_needs_record(l))
                        continue;
                r = lease_record(l);
                if (r < 0)
                        break;
                (void) fwrite(l->state_record, 1, l->state_record_len, f);
        }

        if (fflush(f) != 0 || ferror(f))
                r = -EIO;
        if (r >= 0 && fsync(fileno(f)) < 0)
                r = -errno;
        if (fclose(f) != 0 && r >= 0)
                r = -errno;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                (void) unlink(tmp);
        return r;
}

/* "vfio/3,0,0,0600,-" or "...,0600,02000000010006..." */
static int parse_grant(const char *v, Lease *l) {
        _cleanup_free_ char *node = NULL;
        LeaseGrant g = {};
        unsigned uid, gid, mode;
        const char *comma = strchr(v, ','), *hex;
        char raw[HOST_NODE_MAX * 3 + 1];
        int r, n = 0;

        if (!comma || (size_t) (comma - v) >= sizeof raw)
                return -EBADMSG;
        memcpy(raw, v, (size_t) (comma - v));
        raw[comma - v] = 0;
        r = unescape(raw, &node);
        if (r < 0)
                return r;
        if (strlen(node) >= sizeof g.node ||
            sscanf(comma + 1, "%u,%u,%o,%n", &uid, &gid, &mode, &n) != 3 || n == 0)
                return -EBADMSG;
        strcpy(g.node, node);
        g.before = (HostNodeAccess) { .uid = uid, .gid = gid, .mode = mode & 07777 };
        hex = comma + 1 + n;
        if (!streq(hex, "-")) {
                size_t len = strlen(hex);
                if (len == 0 || len % 2 != 0 || len / 2 > sizeof g.before.acl)
                        return -EBADMSG;
                for (size_t k = 0; k < len / 2; k++) {
                        unsigned byte;
                        if (sscanf(hex + 2 * k, "%2x", &byte) != 1)
                                return -EBADMSG;
                        g.before.acl[k] = (uint8_t) byte;
                }
                g.before.has_acl = true;
                g.before.acl_size = len / 2;
        }
        return lease_add_grant(l, &g);
}

static int parse_lease_line(char *line, Lease *l) {
        char *save = NULL, *w;
        int k = 0, r;

        for (w = strtok_r(line, " ", &save); w; w = strtok_r(NULL, " ", &save), k++) {
                const char *v;
                switch (k) {
                case 0: /* "lease" */
                        break;
                case 1:
                        if (strlen(w) != LEASE_ID_LEN)
                                return -EBADMSG;
                        strcpy(l->id, w);
                        break;
                case 2:
                        if (!token_is_valid(w))
                                return -EBADMSG;
                        strcpy(l->token, w);
                        break;
                case 3:
                        r = lease_state_from_string(w);
                        if (r < 0)
                                return -EBADMSG;
                        l->state = r;
                        break;
                case 4:
                        r = owner_kind_from_string(w);
                        if (r < 0)
                                return -EBADMSG;
                        l->owner_kind = r;
                        break;
                default:
                        if ((v = startswith_word(w, "uid=")))
                                l->uid = (uid_t) strtoul(v, NULL, 10);
                        else if ((v = startswith_word(w, "gid=")))
                                l->gid = (gid_t) strtoul(v, NULL, 10);
                        else if ((v = startswith_word(w, "pid=")))
                                l->pid = (pid_t) strtoul(v, NULL, 10);
                        else if ((v = startswith_word(w, "owner-pid=")))
                                l->owner_pid = (pid_t) strtoul(v, NULL, 10);
                        else if ((v = startswith_word(w, "owner-start=")))
                                l->owner_starttime = strtoull(v, NULL, 10);
                        else if ((v = startswith_word(w, "conn=")))
                                l->connection_id = strtoull(v, NULL, 10);
                        else if ((v = startswith_word(w, "iommu=")))
                                l->configure_iommu = streq(v, "1");
                        else if ((v = startswith_word(w, "kvm=")))
                                l->kvm_registered = streq(v, "1");
                        else if ((v = startswith_word(w, "memlock=")))
                                l->memlock = strtoull(v, NULL, 10);
                        else if ((v = startswith_word(w, "since=")))
                                l->since_usec = strtoull(v, NULL, 10);
                        else if ((v = startswith_word(w, "delivery="))) {
                                r = lease_delivery_from_string(v);
                                if (r < 0)
                                        return -EBADMSG;
                                l->delivery = r;
                        } else if ((v = startswith_word(w, "grant-uid=")))
                                l->grant_uid = (uid_t) strtoul(v, NULL, 10);
                        else if ((v = startswith_word(w, "grant="))) {
                                r = parse_grant(v, l);
                                if (r < 0)
                                        return r;
                        } else if ((v = startswith_word(w, "label="))) {
                                free(l->label);
                                l->label = NULL;
                                r = unescape(v, &l->label);
                                if (r < 0)
                                        return r;
                        }
                        /* Unknown keys are skipped: a newer daemon may add some. */
                }
        }
        return k >= 5 ? 0 : -EBADMSG;
}

int state_read(const char *path, Manager *m, Lease **ret, unsigned *ret_line) {
        _cleanup_free_ char *line = NULL;
        Lease *first = NULL, *last = NULL, *cur = NULL;
        size_t size = 0;
        unsigned line_no = 0;
        FILE *f;
        int r = 0;

        f = fopen(path, "re");
        if (!f) {
                if (errno == ENOENT) {
                        *ret = NULL;
                        return 0;
                }
                return -errno;
        }

        for (;;) {
                ssize_t n = getline(&line, &size, f);
                if (n < 0)
                        break;
                line_no++;
                if (n > 0 && line[n - 1] == '\n')
                        line[n - 1] = 0;

                if (line_no == 1) {
                        if (!streq(line, "groupd-state 1")) {
                                r = -EBADMSG;
                                break;
                        }
                        continue;
                }

                if (startswith_word(line, "lease ")) {
                        if (cur) {
                                r = -EBADMSG;
                                break;
                        }
                        r = lease_new(m, &cur);
                        if (r < 0)
                                break;
                        r = parse_lease_line(line, cur);
                        if (r < 0)
                                break;
                } else if (startswith_word(line, "group ")) {
                        unsigned g;
                        if (!cur || sscanf(line, "group %u", &g) != 1 || lease_add_group(cur, g) < 0) {
                                r = -EBADMSG;
                                break;
                        }
                } else if (startswith_word(line, "device ")) {
                        char addr[HOST_ADDR_MAX], drv[HOST_DRIVER_MAX], extra[3][80] = {};
                        unsigned g;
                        int k;
                        if (!cur || (k = sscanf(line, "device %31s %u %63s %79s %79s %79s", addr, &g, drv,
                                                extra[0], extra[1], extra[2])) < 3) {
                                r = -EBADMSG;
                                break;
                        }
                        r = lease_add_device(cur, addr, g, streq(drv, "-") ? "" : drv, NULL);
                        if (r < 0)
                                break;
                        /* Files before override= was recorded: "" (none), which is what those daemons
                         * restored, as they cleared a vfio-pci override and left others alone. */
                        for (int e = 0; e < k - 3 && r >= 0; e++) {
                                LeaseDevice *ld = &cur->devices[cur->n_devices - 1];
                                const char *v;
                                if ((v = startswith_word(extra[e], "override=")) && strlen(v) < sizeof ld->override)
                                        strcpy(ld->override, v);
                                else if ((v = startswith_word(extra[e], "vfio=")) && strlen(v) < sizeof ld->vfio_driver)
                                        strcpy(ld->vfio_driver, v);
                                else if (streq(extra[e], "standby")) /* issue 16 */
                                        ld->standby = true;
                                else
                                        r = -EBADMSG;
                        }
                        if (r < 0)
                                break;
                } else if (streq(line, "end")) {
                        if (!cur) {
                                r = -EBADMSG;
                                break;
                        }
                        cur->recovered = true;
                        if (last)
                                last->next = cur;
                        else
                                first = cur;
                        cur->prev = last;
                        last = cur;
                        cur = NULL;
                } else if (line[0] != 0) {
                        r = -EBADMSG;
                        break;
                }
        }
        fclose(f);

        if (r >= 0 && cur)
                r = -EBADMSG; /* a lease without "end": the file was cut */
        if (r < 0) {
                lease_free(cur);
                while (first) {
                        Lease *n = first->next;
                        lease_free(first);
                        first = n;
                }
                if (ret_line)
                        *ret_line = line_no;
                return r;
        }

        *ret = first;
        return 0;
}

int process_starttime(pid_t pid, uint64_t *ret) {
        char path[64], buf[1024];
        const char *p;
        unsigned long long t;
        int r;

        snprintf(path, sizeof path, "/proc/%i/stat", (int) pid);
        r = read_one_line_at(AT_FDCWD, path, buf, sizeof buf);
        if (r == -ENOENT)
                return -ESRCH;
        if (r < 0)
                return r;

        p = strrchr(buf, ')');
        if (!p)
                return -EBADMSG;
        /* After ")": field 3 (state) ... field 22 (starttime): skip 19 fields. */
        p++;
        for (int i = 0; i < 20; i++) {
                p = strchr(p, ' ');
                if (!p)
                        return -EBADMSG;
                p++;
        }
        if (sscanf(p, "%llu", &t) != 1)
                return -EBADMSG;
        *ret = t;
        return 0;
}
