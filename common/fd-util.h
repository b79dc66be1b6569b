/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* File descriptor helpers: fds passed with SCM_RIGHTS on a SOCK_SEQPACKET socket, one message at a
 * time, every received fd close-on-exec. */

#include <sys/types.h>

#include "macro.h"

/* The most fds one message may carry; the kernel's own limit (SCM_MAX_FD) is 253. */
#define FD_MSG_MAX 128

/* Sends one message with n_fds descriptors attached (borrowed, not closed). Returns 0, or negative errno;
 * -EAGAIN on a non-blocking socket that is full. */
int fd_send_msg(int sock, const void *buf, size_t len, const int *fds, size_t n_fds);

/* Receives one message into buf (size bytes). The fds that came with it (close-on-exec) are stored in
 * fds[] (capacity max_fds), their number in *ret_n_fds. Returns the message length (0 means the peer
 * hung up), or negative errno: -EMSGSIZE when the message or its fds were cut (whatever fds arrived are
 * closed then). */
/* On -EMSGSIZE (the message or its fds did not fit) every fd is closed, and *ret_n_fds says how many
 * came, more than max_fds when they did not all fit. */
ssize_t fd_recv_msg(int sock, void *buf, size_t size, int *fds, size_t max_fds, size_t *ret_n_fds);

int fd_set_nonblock(int fd, bool nonblock);
int fd_set_cloexec(int fd, bool cloexec);

/* Reads a small file at dir_fd/path into a NUL-terminated buffer, with the trailing newline stripped. */
int read_one_line_at(int dir_fd, const char *path, char *buf, size_t size);
/* Writes a string to dir_fd/path (O_WRONLY, no create), as sysfs wants: one write(). */
int write_string_at(int dir_fd, const char *path, const char *s);
