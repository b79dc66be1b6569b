/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "fd-util.h"

int fd_send_msg(int sock, const void *buf, size_t len, const int *fds, size_t n_fds) {
        union {
                struct cmsghdr cmsghdr;
                uint8_t buf[CMSG_SPACE(sizeof(int) * FD_MSG_MAX)];
        } control;
        struct iovec iov = { .iov_base = (void *) buf, .iov_len = len };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

        if (n_fds > FD_MSG_MAX)
                return -E2BIG;

        if (n_fds > 0) {
                struct cmsghdr *cmsg;

                memset(&control, 0, sizeof control);
                mh.msg_control = &control;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                cmsg = CMSG_FIRSTHDR(&mh);
                cmsg->cmsg_level = SOL_SOCKET;
                cmsg->cmsg_type = SCM_RIGHTS;
                cmsg->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * n_fds);
        }

        for (;;) {
                ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);
                if (n >= 0)
                        return (size_t) n == len ? 0 : -EMSGSIZE;
                if (errno != EINTR)
                        return -errno;
        }
}

ssize_t fd_recv_msg(int sock, void *buf, size_t size, int *fds, size_t max_fds, size_t *ret_n_fds) {
        union {
                struct cmsghdr cmsghdr;
                uint8_t buf[CMSG_SPACE(sizeof(int) * FD_MSG_MAX)];
        } control;
        struct iovec iov = { .iov_base = buf, .iov_len = size };
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = &control,
                .msg_controllen = sizeof control,
        };
        size_t n_fds = 0;
        bool cut = false;
        ssize_t n;

        for (;;) {
                n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
                if (n >= 0)
                        break;
                if (errno != EINTR)
                        return -errno;
        }

        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;

                size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                int *in = (int *) CMSG_DATA(c);
                for (size_t i = 0; i < k; i++) {
                        int fd;
                        memcpy(&fd, in + i, sizeof fd);
                        if (n_fds < max_fds)
                                fds[n_fds++] = fd;
                        else {
                                safe_close(fd);
                                cut = true;
                        }
                }
        }

        if (cut || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
                close_many(fds, n_fds);
                if (ret_n_fds)  /* how many came (closed): more than fit, when the control data was cut */
                        *ret_n_fds = n_fds + ((cut || (mh.msg_flags & MSG_CTRUNC)) ? 1 : 0);
                return -EMSGSIZE;
        }

        if (ret_n_fds)
                *ret_n_fds = n_fds;
        else
                close_many(fds, n_fds);
        return n;
}

int fd_set_nonblock(int fd, bool nonblock) {
        int flags = fcntl(fd, F_GETFL);
        if (flags < 0)
                return -errno;
        flags = nonblock ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
        if (fcntl(fd, F_SETFL, flags) < 0)
                return -errno;
        return 0;
}

int fd_set_cloexec(int fd, bool cloexec) {
        int flags = fcntl(fd, F_GETFD);
        if (flags < 0)
                return -errno;
        flags = cloexec ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC;
        if (fcntl(fd, F_SETFD, flags) < 0)
                return -errno;
        return 0;
}

int read_one_line_at(int dir_fd, const char *path, char *buf, size_t size) {
        _cleanup_close_ int fd = -EBADF;
        ssize_t n;

        if (size == 0)
                return -EINVAL;

        fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;

        n = read(fd, buf, size - 1);
        if (n < 0)
                return -errno;
        buf[n] = 0;

        char *nl = strchr(buf, '\n');
        if (nl)
                *nl = 0;
        return 0;
}

int write_string_at(int dir_fd, const char *path, const char *s) {
        _cleanup_close_ int fd = -EBADF;
        size_t len = strlen(s);
        ssize_t n;

        fd = openat(dir_fd, path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;

        n = write(fd, s, len);
        if (n < 0)
                return -errno;
        if ((size_t) n != len)
                return -EIO;
        return 0;
}
