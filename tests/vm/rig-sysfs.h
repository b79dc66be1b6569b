/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The sysfs steps the rig's raw VFIO programs (vfio-raw, vfio-broker) share: a group's devices as
 * they are, each moved to vfio-pci (driver_override, unbind, drivers_probe) and put back exactly
 * as it was. The same steps groupd's linux backend takes, written again here on purpose so that the
 * rig's reference does not share groupd's code; the two programs share this one copy.
 *
 * Errors go to stderr as "PROG: ...", PROG being rig_prog (each program sets it).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RIG_SYS_PCI "/sys/bus/pci"
#define RIG_MAX_DEVICES 32

struct rig_dev {
        char addr[64];
        char driver[64];   /* the host driver before we started, "" when none */
        char override[64]; /* driver_override before we started, "" when none */
        bool moved;        /* we moved it to vfio-pci and must put it back */
};

extern const char *rig_prog;

/* snprintf that cuts silently: sysfs names and paths here are short. */
void rig_fmt(char *buf, size_t size, const char *f, ...) __attribute__((format(printf, 3, 4)));
/* "PROG: MESSAGE" on stderr (%m is the errno of the caller); returns -1. */
int rig_err(const char *f, ...) __attribute__((format(printf, 1, 2)));
uint64_t rig_now_us(void);

/* 0 or -errno. read_file keeps the first line, without its newline. */
int rig_write_file(const char *path, const char *value);
int rig_read_file(const char *path, char *buf, size_t size);
/* The basename of a symlink's target, "" when there is no link. */
void rig_link_name(const char *path, char *out, size_t size);
/* The driver bound to a PCI device now, "" when none. */
void rig_driver_of(const char *addr, char *out, size_t size);

/* The IOMMU group of ADDR and its devices, ADDR first, each with its driver and driver_override as they
 * are now. Returns 0, or -1 having said why. */
int rig_load_group(const char *addr, unsigned *ret_group, struct rig_dev *devs, size_t *ret_n);
/* A device left where it is: already on vfio-pci, or a bridge on pcieport (the kernel accepts one in a
 * viable group). */
bool rig_keeps_driver(const struct rig_dev *d);
/* Moves D to vfio-pci unless rig_keeps_driver(); 0, or -1 having said why. */
int rig_to_vfio(struct rig_dev *d);
/* Puts a moved D back: its driver_override, then its driver. 0, or -1 having said why. */
int rig_restore(struct rig_dev *d);
