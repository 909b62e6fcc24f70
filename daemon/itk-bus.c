/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <gio/gio.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "itk-bus.h"
#include "itk-error.h"
#include "itk-value.h"

/* Messages processed per dispatch before yielding to other sources. */
#define DISPATCH_BATCH 64

typedef struct {
        GSource source;
        sd_bus *bus;
        gpointer fd_tag;
        int events; /* what the fd is polled for now */
        GSourceFunc disconnected;
        gpointer user_data;
        gboolean gone;
} ItkBusSource;

static gboolean
itk_bus_source_prepare(GSource *source, gint *timeout)
{
        ItkBusSource *self = (ItkBusSource *)source;
        uint64_t until = UINT64_MAX;
        int events;

        *timeout = -1;
        if (self->gone)
                return FALSE;
        events = sd_bus_get_events(self->bus);
        /* Only on change: g_source_modify_unix_fd() wakes the context, and
         * doing it on every prepare would make the loop spin. */
        if (events >= 0 && events != self->events) {
                self->events = events;
                g_source_modify_unix_fd(source, self->fd_tag, (GIOCondition)events);
        }
        if (sd_bus_get_timeout(self->bus, &until) < 0 || until == UINT64_MAX)
                return FALSE;
        if (until == 0)
                return TRUE;
        {
                struct timespec ts;
                uint64_t now;

                clock_gettime(CLOCK_MONOTONIC, &ts);
                now = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
                if (until <= now)
                        return TRUE;
                *timeout = (gint)MIN((until - now + 999) / 1000, (uint64_t)G_MAXINT);
        }
        return FALSE;
}

static gboolean
itk_bus_source_check(GSource *source)
{
        ItkBusSource *self = (ItkBusSource *)source;
        uint64_t until = UINT64_MAX;

        if (self->gone)
                return FALSE;
        if (g_source_query_unix_fd(source, self->fd_tag) != 0)
                return TRUE;
        if (sd_bus_get_timeout(self->bus, &until) >= 0 && until != UINT64_MAX) {
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                return until <= (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
        }
        return FALSE;
}

static gboolean
itk_bus_source_dispatch(GSource *source, GSourceFunc callback, gpointer user_data)
{
        ItkBusSource *self = (ItkBusSource *)source;
        int r = 0;

        for (guint i = 0; i < DISPATCH_BATCH; i++) {
                r = sd_bus_process(self->bus, NULL);
                if (r <= 0)
                        break;
        }
        if (r < 0 && !self->gone) {
                self->gone = TRUE;
                g_warning("bus connection lost: %s", g_strerror(-r));
                if (self->disconnected != NULL)
                        self->disconnected(self->user_data);
                return G_SOURCE_CONTINUE;
        }
        /* More queued: come back on the next iteration without polling. */
        g_source_set_ready_time(source, r > 0 ? 0 : -1);
        return G_SOURCE_CONTINUE;
}

static void
itk_bus_source_finalize(GSource *source)
{
        ItkBusSource *self = (ItkBusSource *)source;
        sd_bus_unref(self->bus);
}

static GSourceFuncs itk_bus_source_funcs = {
        .prepare = itk_bus_source_prepare,
        .check = itk_bus_source_check,
        .dispatch = itk_bus_source_dispatch,
        .finalize = itk_bus_source_finalize,
};

GSource *
itk_bus_attach(sd_bus *bus, GSourceFunc disconnected, gpointer user_data)
{
        GSource *source = g_source_new(&itk_bus_source_funcs, sizeof(ItkBusSource));
        ItkBusSource *self = (ItkBusSource *)source;

        self->bus = sd_bus_ref(bus);
        self->disconnected = disconnected;
        self->user_data = user_data;
        self->events = G_IO_IN;
        self->fd_tag = g_source_add_unix_fd(source, sd_bus_get_fd(bus), G_IO_IN);
        g_source_set_static_name(source, "sd-bus");
        g_source_attach(source, g_main_context_get_thread_default());
        return source;
}

int
itk_bus_error_from_gerror(const GError *error, sd_bus_error *ret)
{
        static const struct {
                ItkError code;
                const char *name;
        } map[] = {
                { ITK_ERROR_INVALID_STATE, "org.ignition.Toolkit.Error.InvalidState" },
                { ITK_ERROR_NOT_RUNNING, "org.ignition.Toolkit.Error.NotRunning" },
                { ITK_ERROR_NO_SUCH_PLAYBOOK, "org.ignition.Toolkit.Error.NoSuchPlaybook" },
                { ITK_ERROR_INVALID_PLAYBOOK, "org.ignition.Toolkit.Error.InvalidPlaybook" },
                { ITK_ERROR_INVALID_PARAMETERS, "org.ignition.Toolkit.Error.InvalidParameters" },
                { ITK_ERROR_NO_SUCH_CREDENTIAL, "org.ignition.Toolkit.Error.NoSuchCredential" },
                { ITK_ERROR_NO_SUCH_EXECUTION, "org.ignition.Toolkit.Error.NoSuchExecution" },
                { ITK_ERROR_INVALID_ARGS, SD_BUS_ERROR_INVALID_ARGS },
                { ITK_ERROR_ACCESS_DENIED, SD_BUS_ERROR_ACCESS_DENIED },
                { ITK_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
                  SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED },
                { ITK_ERROR_LIMITS_EXCEEDED, SD_BUS_ERROR_LIMITS_EXCEEDED },
                { ITK_ERROR_NOT_SUPPORTED, SD_BUS_ERROR_NOT_SUPPORTED },
                { ITK_ERROR_TIMED_OUT, SD_BUS_ERROR_TIMEOUT },
                { ITK_ERROR_STORE_FAILED, "org.ignition.Toolkit.Error.StoreFailed" },
                { ITK_ERROR_NO_SUCH_ARTIFACT, "org.ignition.Toolkit.Error.NoSuchArtifact" },
                { ITK_ERROR_NO_SUCH_INPUT_FILE, "org.ignition.Toolkit.Error.NoSuchInputFile" },
        };
        const char *name = SD_BUS_ERROR_FAILED;

        if (error->domain == ITK_ERROR) {
                for (guint i = 0; i < G_N_ELEMENTS(map); i++)
                        if (map[i].code == (ItkError)error->code)
                                name = map[i].name;
        } else if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT)) {
                name = SD_BUS_ERROR_INVALID_ARGS;
        }
        return sd_bus_error_set(ret, name, error->message);
}

/* --- GVariant <-> sd_bus_message ----------------------------------------------------- */

int
itk_bus_reply_fd(sd_bus_message *call, int fd)
{
        int r = sd_bus_reply_method_return(call, "h", fd);

        close(fd);
        return r;
}

int
itk_bus_reply_page(sd_bus_message *call, GVariant *items, const char *next_cursor)
{
        _itk_cleanup_bus_message_ sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(call, &reply);
        if (r < 0)
                return r;
        r = itk_bus_message_append_variant(reply, items);
        if (r < 0)
                return r;
        r = sd_bus_message_append(reply, "s", next_cursor);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

int
itk_bus_message_append_variant(sd_bus_message *m, GVariant *value)
{
        const char *type = g_variant_get_type_string(value);
        GVariantIter iter;
        GVariant *child;
        int r;

        switch (type[0]) {
        case 'b': {
                int b = g_variant_get_boolean(value);
                return sd_bus_message_append_basic(m, 'b', &b);
        }
        case 'y': {
                guint8 v = g_variant_get_byte(value);
                return sd_bus_message_append_basic(m, 'y', &v);
        }
        case 'n': {
                gint16 v = g_variant_get_int16(value);
                return sd_bus_message_append_basic(m, 'n', &v);
        }
        case 'q': {
                guint16 v = g_variant_get_uint16(value);
                return sd_bus_message_append_basic(m, 'q', &v);
        }
        case 'i': {
                gint32 v = g_variant_get_int32(value);
                return sd_bus_message_append_basic(m, 'i', &v);
        }
        case 'u': {
                guint32 v = g_variant_get_uint32(value);
                return sd_bus_message_append_basic(m, 'u', &v);
        }
        case 'x': {
                gint64 v = g_variant_get_int64(value);
                return sd_bus_message_append_basic(m, 'x', &v);
        }
        case 't': {
                guint64 v = g_variant_get_uint64(value);
                return sd_bus_message_append_basic(m, 't', &v);
        }
        case 'd': {
                double v = g_variant_get_double(value);
                return sd_bus_message_append_basic(m, 'd', &v);
        }
        case 's':
        case 'o':
        case 'g':
                return sd_bus_message_append_basic(m, type[0], g_variant_get_string(value, NULL));
        case 'v': {
                g_autoptr(GVariant) inner = g_variant_get_variant(value);
                r = sd_bus_message_open_container(m, 'v', g_variant_get_type_string(inner));
                if (r < 0)
                        return r;
                r = itk_bus_message_append_variant(m, inner);
                if (r < 0)
                        return r;
                return sd_bus_message_close_container(m);
        }
        case 'a':
        case '(':
        case '{': {
                char container = type[0] == 'a' ? 'a' : type[0] == '(' ? 'r' : 'e';
                g_autofree char *contents =
                        type[0] == 'a' ? g_strdup(type + 1) : g_strndup(type + 1, strlen(type) - 2);
                r = sd_bus_message_open_container(m, container, contents);
                if (r < 0)
                        return r;
                g_variant_iter_init(&iter, value);
                while ((child = g_variant_iter_next_value(&iter)) != NULL) {
                        r = itk_bus_message_append_variant(m, child);
                        g_variant_unref(child);
                        if (r < 0)
                                return r;
                }
                return sd_bus_message_close_container(m);
        }
        default:
                return -EINVAL;
        }
}

static int itk_bus_read_value(sd_bus_message *m, ItkValueBudget *budget, GVariant **ret,
                              GError **error);

static int
itk_bus_read_container(sd_bus_message *m, char type, const char *contents, ItkValueBudget *budget,
                       GVariant **ret, GError **error)
{
        GVariantBuilder builder;
        g_autofree char *full = NULL;
        int r;

        if (type == 'a')
                full = g_strconcat("a", contents, NULL);
        else if (type == 'r')
                full = g_strconcat("(", contents, ")", NULL);
        else
                full = g_strconcat("{", contents, "}", NULL);
        if (!g_variant_type_string_is_valid(full))
                return -EINVAL;
        /* A dict entry is no value of its own: its key and value are counted. */
        if (budget != NULL && type != 'e' && !itk_value_budget_enter(budget, error))
                return -E2BIG;
        r = sd_bus_message_enter_container(m, type, contents);
        if (r < 0)
                return r;
        g_variant_builder_init(&builder, G_VARIANT_TYPE(full));
        for (;;) {
                GVariant *child = NULL;
                r = sd_bus_message_peek_type(m, NULL, NULL);
                if (r < 0) {
                        g_variant_builder_clear(&builder);
                        return r;
                }
                if (r == 0)
                        break;
                r = itk_bus_read_value(m, budget, &child, error);
                if (r < 0) {
                        g_variant_builder_clear(&builder);
                        return r;
                }
                g_variant_builder_add_value(&builder, child);
                g_variant_unref(child);
        }
        r = sd_bus_message_exit_container(m);
        if (r < 0) {
                g_variant_builder_clear(&builder);
                return r;
        }
        if (budget != NULL && type != 'e')
                itk_value_budget_leave(budget);
        *ret = g_variant_ref_sink(g_variant_builder_end(&builder));
        return 1;
}

/* Each part is counted against @budget (when given) before it is copied. */
static int
itk_bus_read_value(sd_bus_message *m, ItkValueBudget *budget, GVariant **ret, GError **error)
{
        const char *contents = NULL;
        char type;
        int r;

        r = sd_bus_message_peek_type(m, &type, &contents);
        if (r <= 0)
                return r < 0 ? r : -ENXIO;
        if (budget != NULL && strchr("bynqiuxtd", type) != NULL &&
            !itk_value_budget_add(budget, 0, error))
                return -E2BIG;

        switch (type) {
        case 'b': {
                int v;
                r = sd_bus_message_read_basic(m, type, &v);
                if (r >= 0)
                        *ret = g_variant_ref_sink(g_variant_new_boolean(v));
                return r;
        }
#define READ_BASIC(code, ctype, ctor)                                                              \
        case code: {                                                                               \
                ctype v;                                                                           \
                r = sd_bus_message_read_basic(m, type, &v);                                        \
                if (r >= 0)                                                                        \
                        *ret = g_variant_ref_sink(ctor(v));                                        \
                return r;                                                                          \
        }
                READ_BASIC('y', guint8, g_variant_new_byte)
                READ_BASIC('n', gint16, g_variant_new_int16)
                READ_BASIC('q', guint16, g_variant_new_uint16)
                READ_BASIC('i', gint32, g_variant_new_int32)
                READ_BASIC('u', guint32, g_variant_new_uint32)
                READ_BASIC('x', gint64, g_variant_new_int64)
                READ_BASIC('t', guint64, g_variant_new_uint64)
                READ_BASIC('d', double, g_variant_new_double)
#undef READ_BASIC
        case 's':
        case 'o':
        case 'g': {
                const char *v;
                r = sd_bus_message_read_basic(m, type, &v);
                if (r < 0)
                        return r;
                if (budget != NULL && !itk_value_budget_add(budget, strlen(v), error))
                        return -E2BIG;
                *ret = g_variant_ref_sink(type == 's'   ? g_variant_new_string(v)
                                          : type == 'o' ? g_variant_new_object_path(v)
                                                        : g_variant_new_signature(v));
                return r;
        }
        case 'v': {
                g_autoptr(GVariant) inner = NULL;
                if (budget != NULL && !itk_value_budget_enter(budget, error))
                        return -E2BIG;
                r = sd_bus_message_enter_container(m, 'v', contents);
                if (r < 0)
                        return r;
                r = itk_bus_read_value(m, budget, &inner, error);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
                if (budget != NULL)
                        itk_value_budget_leave(budget);
                *ret = g_variant_ref_sink(g_variant_new_variant(inner));
                return 1;
        }
        case 'a':
        case 'r':
        case 'e':
                return itk_bus_read_container(m, type, contents, budget, ret, error);
        default:
                /* Unix fds and anything unknown: refused. */
                return -EINVAL;
        }
}

int
itk_bus_message_read_variant(sd_bus_message *m, GVariant **ret)
{
        return itk_bus_read_value(m, NULL, ret, NULL);
}

int
itk_bus_message_read_bounded(sd_bus_message *m, ItkValueBudget *budget, GVariant **ret,
                             GError **error)
{
        g_return_val_if_fail(budget != NULL, -EINVAL);
        return itk_bus_read_value(m, budget, ret, error);
}
