/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the files of the D-Bus edge share, and nothing outside them sees: the Bus, its requests, the
 * object paths, and the ways of answering. bus.c owns them (the connection, the object registry,
 * Introspect, Properties, ObjectManager, name owners, the request lifecycle); bus-manager.c, bus-group.c
 * and bus-lease.c are one object each; bus-caller.c says who a caller is, bus-polkit.c whether they may;
 * bus-prop.c writes properties; bus-error.c is the one error table. */

#include <assert.h>
#include <dbus/dbus.h>

#include "bus-error.h"
#include "bus-glue.h"
#include "bus-prop.h"
#include "bus.h"

#define IFACE_MANAGER BUS_NAME ".Manager"
#define IFACE_GROUP BUS_NAME ".Group"
#define IFACE_LEASE BUS_NAME ".Lease"
#define PATH_GROUPS BUS_PATH "/group"
#define PATH_LEASES BUS_PATH "/lease"

/* What a request asks, for bus-polkit.c (the action and the details); its body is r->execute. */
typedef enum RequestKind {
        REQUEST_LIST_GROUPS,
        REQUEST_GET_GROUP,
        REQUEST_LIST_LEASES,
        REQUEST_ACQUIRE,
        REQUEST_LEASE_RELEASE,
        REQUEST_RELEASE_TOKEN,
        REQUEST_MEMLOCK_LIMIT,
        REQUEST_LEASE_REVOKE,
        _REQUEST_KIND_MAX,
} RequestKind;

typedef struct Request Request;
typedef struct BusObject BusObject;

/* One method of an interface, as dbus-broker's controller-dbus.c lists them: bus.c's one dispatcher finds
 * it by name (else UnknownMethod), checks the arguments against in_signature (else InvalidArgs), then
 * calls the handler, which answers now or starts a request that answers later. */
typedef struct BusMethod {
        const char *name;
        const char *in_signature;
        void (*handler)(Bus *b, DBusMessage *m, const BusObject *o);
} BusMethod;

/* An interface of groupd's objects: its method table (ended by an empty entry) and its properties' one
 * writer (NULL: it has none). */
typedef struct BusVTable {
        const char *interface;
        const BusMethod *methods;
        void (*properties)(Bus *b, const BusObject *o, PropWriter *w);
} BusVTable;

extern const BusVTable bus_manager_vtable, bus_group_vtable, bus_lease_vtable;

typedef enum BusObjectKind {
        BUS_OBJECT_NONE,
        BUS_OBJECT_MANAGER,
        BUS_OBJECT_GROUPS,     /* /org/groupd1/group: a directory of groups */
        BUS_OBJECT_LEASES,
        BUS_OBJECT_GROUP,
        BUS_OBJECT_LEASE,
} BusObjectKind;

/* An object a call is addressed to, found by its path for the call's length. */
struct BusObject {
        BusObjectKind kind;
        const BusVTable *vtable;   /* the object's own interface; NULL for the directories */
        GroupView group;           /* BUS_OBJECT_GROUP; group_view_done() */
        const Lease *lease;        /* BUS_OBJECT_LEASE */
};

typedef struct CallerCache CallerCache;

struct Bus {
        sd_event *event;
        Manager *manager;
        DBusConnection *connection;
        BusGlue *glue;
        bool accepting;
        bool registered;
        uint32_t n_leases_sent;          /* NLeases as last announced (UINT32_MAX: never) */
        Request *requests;
        size_t n_requests;
        /* The interface blocks of proto/org.groupd1.xml, verbatim. */
        char *xml_manager, *xml_group, *xml_lease;
        /* Who the callers are, by unique name: a unique name is never given out twice on a bus and its
         * credentials cannot change, so the bus is asked once per caller, not once per call. An entry
         * goes when its name leaves the bus. */
        CallerCache *callers;
        size_t n_callers;
};

/* A method call that waits for the bus (the caller's credentials), polkit, or the manager. */
struct Request {
        Bus *bus;                        /* NULL once the bus is gone while the manager still works on it */
        RequestKind kind;
        DBusMessage *message;
        char *sender;
        Caller caller;
        DBusPendingCall *pending;
        bool acquiring;                  /* handed to manager_acquire(), waiting for its answer */
        bool sender_gone;

        char **specs;                    /* ACQUIRE */
        size_t n_specs;
        char *label;
        OwnerKind owner;                 /* ACQUIRE: OWNER_CONNECTION stands for the caller's bus name */
        bool configure_iommu;
        bool kvm;
        bool memlock;
        LeaseDelivery delivery;          /* ACQUIRE: as the option "delivery" says (legacy when not given) */
        bool delivery_reply;             /* AcquireDelivery: the reply says what came, in every mode */
        bool grant_uid_set;
        uid_t grant_uid;
        int owner_pidfd;
        uint64_t guest_ram;              /* ACQUIRE with memlock; MEMLOCK_LIMIT */
        bool viommu;                     /* MEMLOCK_LIMIT */
        /* The polkit actions this request needs, asked one after the other (request_authorize() fills them:
         * ACQUIRE may need memlock and acquire-for-other after acquire; LEASE_REVOKE with force,
         * revoke-force after release-other); the one being asked is actions[i_action]. */
        const char *actions[3];
        size_t n_actions, i_action;
        pid_t owner_pid;                 /* ACQUIRE naming a process that is not the caller's own */
        uid_t owner_uid;
        uint64_t deadline_usec;          /* LEASE_REVOKE */
        bool force;
        AcquirePreview preview;
        char *spec;                      /* GET_GROUP; RELEASE_TOKEN: the token */
        char lease_id[LEASE_ID_LEN + 1]; /* LEASE_RELEASE */

        void (*execute)(Request *r);     /* answers and frees r: the method's body, once authorized */
        Request *prev, *next;
};

void lease_path(const char *id, char *buf, size_t size);
void group_path(unsigned id, char *buf, size_t size);
/* A lease has an object while it is active or releasing: from LeaseStarted to LeaseEnded. */
bool lease_exported(const Lease *l);

/* Sending: m may be NULL (out of memory making it), and is unreffed. */
void bus_send(Bus *b, DBusMessage *m);
void reply_error(Bus *b, DBusMessage *call, const char *name, const char *fmt, ...) _printf_(4, 5);
void reply_oom(Bus *b, DBusMessage *call);
/* Answers call with one value of a basic type (type: DBUS_TYPE_*; value points at it), or out of memory. */
void reply_basic(Bus *b, DBusMessage *call, int type, const void *value);
DBusMessage *new_signal(const char *path, const char *iface, const char *member);
/* invalidated: one property named without its value, or NULL. */
void emit_properties_changed(Bus *b, const char *path, const char *iface,
                             void (*fill)(PropWriter *w, const void *a, const void *c), const void *a,
                             const void *c, const char *invalidated);
/* The same with only the properties named in subset (NULL-terminated; NULL: every changeable one). */
void emit_properties_changed_subset(Bus *b, const char *path, const char *iface,
                                    void (*fill)(PropWriter *w, const void *a, const void *c), const void *a,
                                    const void *c, const char *invalidated, const char *const *subset);

/* The request lifecycle: request_new() → the method parses its arguments into the request →
 * request_start() (who: bus-caller.c) → request_authorize() (may they: bus-polkit.c) → request_execute()
 * (r->execute, which answers) → request_free(). request_new() answers the call itself when it fails
 * (shutting down, too many requests, out of memory). */
int request_new(Bus *b, DBusMessage *call, RequestKind kind, void (*execute)(Request *r), Request **ret);
Request *request_free(Request *r);
void request_fail(Request *r, const char *name, const char *fmt, ...) _printf_(3, 4);
void request_fail_manager(Request *r, const ManagerError *err);
/* Sends call and continues with cb(reply, r) when the answer (or an error) is there. */
int request_call(Request *r, DBusMessage *call, int timeout_ms, DBusPendingCallNotifyFunction cb);
/* Takes the reply of r's pending call. */
DBusMessage *request_steal_reply(Request *r, DBusPendingCall *pending);
void request_execute(Request *r);
