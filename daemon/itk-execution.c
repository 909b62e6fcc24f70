/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>

#include "itk-code-template.h"
#include "itk-error.h"
#include "itk-execution.h"
#include "itk-artifact.h"
#include "itk-redactor.h"
#include "itk-step.h"
#include "itk-timer.h"
#include "itk-value.h"

/* In-memory log lines kept when there is no store (the store keeps them all
 * otherwise). */
#define LOG_RING_MAX 1000
/* CurrentStep* and Progress changes are coalesced to at most one
 * PropertiesChanged per period (StepChanged carries every step transition,
 * and a status transition flushes them first). */
#define COALESCE_PERIOD_MS 50
/* A handler returns within milliseconds of its cancellable (DESIGN.md §5);
 * one that has not after this long is a bug, and Cancel does not wait for it. */
#define CANCEL_WATCHDOG_MS 1000

typedef enum {
        ABANDON_NONE,
        ABANDON_CANCEL,
        ABANDON_SKIP,
        ABANDON_SKIP_BACK,
        ABANDON_TIMEOUT,
        ABANDON_STORE, /* the history store failed: the run ends failed */
} Abandon;

typedef struct _StepState StepState;

struct _StepState {
        ItkStepDef *def; /* borrowed from the frame's playbook */
        char *path;      /* "id" or "parent/child" */
        int index;       /* within its playbook; rollback steps follow the main ones */
        gboolean rollback;
        gint32 position; /* order of creation within the run, for the store */
        ItkStepStatus status;
        guint attempts;
        gint64 started_at;
        gint64 finished_at;
        char *error;
        JsonNode *output;
        GPtrArray *children;         /* StepState*, the nested run of a playbook.run step */
        ItkPlaybook *child_playbook; /* owns the definitions the children borrow */
};

typedef struct _Frame Frame;

struct _Frame {
        ItkPlaybook *playbook;
        char *prefix;      /* "" or "parent/" */
        GPtrArray *states; /* StepState*; shared with the parent step's children */
        guint n_main;      /* states[0..n_main) are main steps, the rest rollback */
        guint cursor;
        gboolean in_rollback;
        char *failure; /* set when the frame is failing (rollback running) */
        JsonObject *parameters;
        JsonObject *variables;
        GHashTable *outputs;     /* step id -> JsonNode, completed steps */
        GHashTable *known_steps; /* step ids */
        GHashTable *credential_params;
        Frame *parent;
        StepState *parent_step; /* the playbook.run step running this frame */
        guint depth;
};

/* One attempt of one step, while its handler's operation is in flight. */
typedef struct {
        ItkExecution *self; /* strong */
        StepState *state;
        Frame *frame;
        GCancellable *cancellable;
        ItkStepContext *ctx;
        ItkTimer *timeout;
        Abandon abandon;
        gboolean pausable;
        double timeout_seconds;
        guint watchdog_id; /* armed by Cancel */
        gboolean orphaned; /* the run ended without it: its result is dropped */
} Attempt;

typedef struct {
        gint64 usec;
        guint priority;
        char *step_id;
        char *message;
} LogLine;

struct _ItkExecution {
        GObject parent_instance;

        char *id;
        char *object_id;
        ItkPlaybook *playbook;
        char *playbook_id;
        ItkStore *store;
        char *work_dir;
        ItkStepSessions *sessions; /* per-provider sessions (browser context) */
        GPtrArray *artifacts;      /* a{sv} of ListArtifacts, in order of writing */
        gpointer browser_session;  /* the "browser" session, for the live view */
        ItkLiveView *live_view;    /* made on the first OpenLiveView */
        char *gateway_url;
        char *gateway_token;
        char *python;
        GHashTable *timeout_overrides;
        ItkPlaybookResolveFunc resolve;
        gpointer resolve_data;
        ItkCredentialLookupFunc credential_lookup;
        gpointer credential_data;
        ItkRedactor *redactor;

        ItkStatus status;
        gboolean pause_requested;
        gboolean debug_mode;
        gboolean debug_release; /* run the step at the cursor without a debug pause */
        gboolean cancel_requested;
        StepState *debug_failed; /* step whose failure paused the run in debug mode */
        gint64 created_at;
        gint64 started_at;
        gint64 finished_at;
        char *error;
        guint32 uid;

        GPtrArray *root_states;
        Frame *root;
        Frame *top;
        gint32 next_position;

        Attempt *op;
        ItkTimer *retry_timer;
        Frame *retry_frame;
        StepState *retry_state;
        ItkTimerGroup *timers;
        guint advance_id;
        guint pending_timeout_id;
        guint progress_id;
        guint pending_props;       /* coalesced ItkExecutionProp not yet announced */
        gint64 props_announced_at; /* monotonic usec of their last announcement */

        int current_step;
        char *current_step_id;
        char *current_step_name;
        double progress;

        GQueue log_ring; /* LogLine*, only without a store */
        /* Set when a write to the history store failed: from then on nothing
         * is announced but the run's end, which is failed with this error. */
        char *store_error;
        gboolean store_finishing;   /* the end is being announced */
        gboolean end_saved;         /* ...and later stored (itk_execution_save_end) */
        ItkStatus announced_status; /* the last StatusChanged that went out */
        guint store_fail_id;

        /* A batch groups the transitions of one engine callback into one store
         * transaction; their announcements wait until it is committed. */
        guint batch_depth;
        gboolean batch_transaction;
        GArray *announcements; /* Announcement */
};

typedef enum {
        ANNOUNCE_STATUS,
        ANNOUNCE_STEP,
        ANNOUNCE_LOG,
        ANNOUNCE_FINISHED,
        ANNOUNCE_PROPERTIES,
} AnnounceKind;

typedef struct {
        AnnounceKind kind;
        int a;
        int b;
        guint64 t;
        char *s1;
        char *s2;
} Announcement;

enum {
        SIGNAL_STATUS_CHANGED,
        SIGNAL_STEP_CHANGED,
        SIGNAL_LOG,
        SIGNAL_LOG_BURST,
        SIGNAL_FINISHED,
        SIGNAL_PROPERTIES_CHANGED,
        N_SIGNALS,
};

static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE(ItkExecution, itk_execution, G_TYPE_OBJECT)

static void itk_execution_schedule_advance(ItkExecution *self);
static void itk_execution_advance(ItkExecution *self);
static void itk_execution_defer_notify(ItkExecution *self, guint props);
static guint itk_execution_take_pending_props(ItkExecution *self);
static gboolean itk_execution_coalesce_cb(gpointer user_data);
static void itk_execution_finish(ItkExecution *self, ItkStatus status, const char *error);
static void itk_execution_attempt_failed(ItkExecution *self, Frame *frame, StepState *state,
                                         const char *message);
static void itk_execution_step_succeeded(ItkExecution *self, Frame *frame, StepState *state,
                                         JsonNode *output);

/* --- names ------------------------------------------------------------------ */

const char *
itk_status_to_string(ItkStatus status)
{
        static const char *const names[] = { "pending",   "running", "paused",
                                             "completed", "failed",  "cancelled" };
        return status < G_N_ELEMENTS(names) ? names[status] : "unknown";
}

gboolean
itk_status_is_terminal(ItkStatus status)
{
        return status == ITK_STATUS_COMPLETED || status == ITK_STATUS_FAILED ||
               status == ITK_STATUS_CANCELLED;
}

const char *
itk_step_status_to_string(ItkStepStatus status)
{
        static const char *const names[] = { "pending", "running", "completed",
                                             "failed",  "skipped", "cancelled" };
        return status < G_N_ELEMENTS(names) ? names[status] : "unknown";
}

/* --- steps and frames ---------------------------------------------------------- */

static void
step_state_free(StepState *state)
{
        g_free(state->path);
        g_free(state->error);
        g_clear_pointer(&state->output, json_node_unref);
        g_clear_pointer(&state->children, g_ptr_array_unref);
        g_clear_pointer(&state->child_playbook, itk_playbook_unref);
        g_free(state);
}

static void
step_state_reset(StepState *state)
{
        state->status = ITK_STEP_PENDING;
        state->attempts = 0;
        state->started_at = 0;
        state->finished_at = 0;
        g_clear_pointer(&state->error, g_free);
        g_clear_pointer(&state->output, json_node_unref);
        g_clear_pointer(&state->children, g_ptr_array_unref);
        g_clear_pointer(&state->child_playbook, itk_playbook_unref);
}

static GPtrArray *
itk_execution_new_states(ItkExecution *self, ItkPlaybook *playbook, const char *prefix)
{
        GPtrArray *states = g_ptr_array_new_with_free_func((GDestroyNotify)step_state_free);
        guint n = playbook->steps->len + playbook->rollback->len;

        for (guint i = 0; i < n; i++) {
                gboolean rollback = i >= playbook->steps->len;
                ItkStepDef *def =
                        rollback ? g_ptr_array_index(playbook->rollback, i - playbook->steps->len)
                                 : g_ptr_array_index(playbook->steps, i);
                StepState *state = g_new0(StepState, 1);

                state->def = def;
                state->path = g_strconcat(prefix, def->id, NULL);
                state->index = (int)i;
                state->rollback = rollback;
                state->position = self->next_position++;
                g_ptr_array_add(states, state);
        }
        return states;
}

static void
frame_free(Frame *frame)
{
        if (frame == NULL)
                return;
        g_clear_pointer(&frame->playbook, itk_playbook_unref);
        g_free(frame->prefix);
        g_clear_pointer(&frame->states, g_ptr_array_unref);
        g_free(frame->failure);
        g_clear_pointer(&frame->parameters, json_object_unref);
        g_clear_pointer(&frame->variables, json_object_unref);
        g_clear_pointer(&frame->outputs, g_hash_table_unref);
        g_clear_pointer(&frame->known_steps, g_hash_table_unref);
        g_clear_pointer(&frame->credential_params, g_hash_table_unref);
        g_free(frame);
}

static Frame *
frame_new(ItkPlaybook *playbook, const char *prefix, GPtrArray *states, JsonObject *parameters)
{
        Frame *frame = g_new0(Frame, 1);

        frame->playbook = itk_playbook_ref(playbook);
        frame->prefix = g_strdup(prefix);
        frame->states = g_ptr_array_ref(states);
        frame->n_main = playbook->steps->len;
        frame->parameters = json_object_ref(parameters);
        frame->variables = json_object_new();
        frame->outputs = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                               (GDestroyNotify)json_node_unref);
        frame->known_steps = g_hash_table_new(g_str_hash, g_str_equal);
        for (guint i = 0; i < states->len; i++) {
                StepState *state = g_ptr_array_index(states, i);
                g_hash_table_add(frame->known_steps, state->def->id);
        }
        frame->credential_params = g_hash_table_new(g_str_hash, g_str_equal);
        for (guint i = 0; i < playbook->parameters->len; i++) {
                ItkParamDef *param = g_ptr_array_index(playbook->parameters, i);
                if (param->type == ITK_PARAM_CREDENTIAL)
                        g_hash_table_add(frame->credential_params, param->name);
        }
        return frame;
}

/* End of the current phase: main steps, or main + rollback while rolling back. */
static guint
frame_phase_end(Frame *frame)
{
        return frame->in_rollback ? frame->states->len : frame->n_main;
}

static guint
frame_phase_start(Frame *frame)
{
        return frame->in_rollback ? frame->n_main : 0;
}

static StepState *
frame_current(Frame *frame)
{
        if (frame->cursor >= frame_phase_end(frame))
                return NULL;
        return g_ptr_array_index(frame->states, frame->cursor);
}

/* --- store ----------------------------------------------------------------------- */

static double itk_execution_compute_progress(ItkExecution *self);

static void
itk_execution_fill_record(ItkExecution *self, ItkExecutionRecord *record)
{
        *record = (ItkExecutionRecord){
                .id = self->id,
                .playbook = self->playbook_id,
                .playbook_name = self->playbook->name,
                .playbook_version = self->playbook->version,
                .domain = self->playbook->domain,
                .status = itk_status_to_string(self->status),
                .error = self->error,
                .created_at = self->created_at,
                .started_at = self->started_at,
                .finished_at = self->finished_at,
                .started_by_uid = self->uid,
                .debug_mode = self->debug_mode,
                .total_steps = (gint32)self->playbook->steps->len,
                .current_step = self->current_step,
                /* Computed once at the end; until then, as last announced. */
                .progress = itk_status_is_terminal(self->status)
                                    ? itk_execution_compute_progress(self)
                                    : self->progress,
        };
}

static gboolean
itk_execution_put_step(ItkExecution *self, StepState *state, GError **error)
{
        g_autofree char *output = NULL;
        ItkStepRecord record = {
                .execution_id = self->id,
                .step_path = state->path,
                .position = state->position,
                .name = state->def->name,
                .type = state->def->type,
                .status = itk_step_status_to_string(state->status),
                .attempts = state->attempts,
                .started_at = state->started_at,
                .finished_at = state->finished_at,
                .error = state->error,
                .index = state->index,
                .phase = state->rollback ? "rollback" : "main",
        };

        if (state->output != NULL)
                output = itk_value_to_json(state->output);
        record.output_json = output;
        return itk_store_put_step(self->store, &record, error);
}

static void itk_execution_finish(ItkExecution *self, ItkStatus status, const char *error);

static gboolean
itk_execution_store_fail_cb(gpointer user_data)
{
        ItkExecution *self = user_data;

        self->store_fail_id = 0;
        if (itk_status_is_terminal(self->status))
                return G_SOURCE_REMOVE;
        if (self->op != NULL) {
                /* Ends failed once the operation has returned (a Cancel still wins). */
                if (self->op->abandon != ABANDON_CANCEL)
                        self->op->abandon = ABANDON_STORE;
                g_cancellable_cancel(self->op->cancellable);
                return G_SOURCE_REMOVE;
        }
        itk_execution_finish(self, ITK_STATUS_FAILED, self->store_error);
        return G_SOURCE_REMOVE;
}

/* What could not be stored is never announced (DESIGN.md §6): the run stops
 * saying so, instead of going on with a history that tells something else. */
static void
itk_execution_store_failed(ItkExecution *self, const GError *error)
{
        if (self->store_error != NULL)
                return;
        self->store_error = g_strdup_printf("the history store failed: %s", error->message);
        g_warning("execution %s: %s; the run fails, and what could not be stored is not "
                  "announced",
                  self->id, error->message);
        if (!itk_status_is_terminal(self->status))
                self->store_fail_id =
                        g_idle_add_full(G_PRIORITY_HIGH, itk_execution_store_fail_cb, self, NULL);
}

/* Opens the batch's transaction on its first write. */
static gboolean
itk_execution_store_begin(ItkExecution *self, GError **error)
{
        if (self->batch_depth > 0 && self->batch_transaction)
                return TRUE;
        if (!itk_store_begin(self->store, error))
                return FALSE;
        self->batch_transaction = self->batch_depth > 0;
        return TRUE;
}

static gboolean
itk_execution_store_commit(ItkExecution *self, GError **error)
{
        /* Inside a batch the commit happens at its end. */
        if (self->batch_depth > 0)
                return TRUE;
        return itk_store_commit(self->store, error);
}

/* Writes a transition: @state's row and/or the execution's row. It is
 * committed before it is announced: at once, or at the end of the batch. */
static void
itk_execution_persist(ItkExecution *self, StepState *state, gboolean execution_row)
{
        g_autoptr(GError) error = NULL;
        ItkExecutionRecord record;

        if (self->store == NULL)
                return;
        if (!itk_execution_store_begin(self, &error)) {
                itk_execution_store_failed(self, error);
                return;
        }
        if (state != NULL && !itk_execution_put_step(self, state, &error))
                goto fail;
        if (execution_row) {
                itk_execution_fill_record(self, &record);
                if (!itk_store_update_execution(self->store, &record, &error))
                        goto fail;
        }
        if (!itk_execution_store_commit(self, &error))
                goto fail;
        return;
fail:
        itk_execution_store_failed(self, error);
        if (self->batch_depth == 0)
                itk_store_rollback(self->store);
}

static void
itk_execution_announce(ItkExecution *self, AnnounceKind kind, int a, int b, guint64 t,
                       const char *s1, const char *s2)
{
        Announcement announcement = { kind, a, b, t, NULL, NULL };

        if (self->store_error != NULL && !self->store_finishing)
                return;
        if (self->batch_depth > 0) {
                announcement.s1 = g_strdup(s1);
                announcement.s2 = g_strdup(s2);
                g_array_append_val(self->announcements, announcement);
                return;
        }
        switch (kind) {
        case ANNOUNCE_STATUS:
                self->announced_status = (ItkStatus)a;
                g_signal_emit(self, signals[SIGNAL_STATUS_CHANGED], 0, a, b);
                break;
        case ANNOUNCE_STEP:
                g_signal_emit(self, signals[SIGNAL_STEP_CHANGED], 0, a, s1, b, s2);
                break;
        case ANNOUNCE_LOG:
                g_signal_emit(self, signals[SIGNAL_LOG], 0, t, (guint)a, s1, s2);
                break;
        case ANNOUNCE_FINISHED:
                g_signal_emit(self, signals[SIGNAL_FINISHED], 0, a, s1);
                break;
        case ANNOUNCE_PROPERTIES:
                g_signal_emit(self, signals[SIGNAL_PROPERTIES_CHANGED], 0, (guint)a);
                break;
        }
}

static void
itk_execution_rewrite_end(ItkExecution *self)
{
        self->store_finishing = TRUE;
        if (self->status == ITK_STATUS_CANCELLED)
                return;
        self->status = ITK_STATUS_FAILED;
        g_free(self->error);
        self->error = g_strdup(self->store_error);
        for (guint i = 0; i < self->announcements->len; i++) {
                Announcement *announcement = &g_array_index(self->announcements, Announcement, i);

                if (announcement->kind == ANNOUNCE_STATUS) {
                        announcement->a = ITK_STATUS_FAILED;
                } else if (announcement->kind == ANNOUNCE_FINISHED) {
                        announcement->a = ITK_STATUS_FAILED;
                        g_free(announcement->s1);
                        announcement->s1 = g_strdup(self->store_error);
                } else if (announcement->kind == ANNOUNCE_PROPERTIES) {
                        announcement->a |= ITK_EXECUTION_PROP_STATUS | ITK_EXECUTION_PROP_ERROR;
                }
        }
}

static void
itk_execution_batch_begin(ItkExecution *self)
{
        self->batch_depth++;
}

static void
itk_execution_batch_end(ItkExecution *self)
{
        g_autoptr(GArray) pending = NULL;
        gboolean in_burst = FALSE;

        g_assert(self->batch_depth > 0);
        if (--self->batch_depth > 0)
                return;
        if (self->batch_transaction) {
                g_autoptr(GError) error = NULL;
                self->batch_transaction = FALSE;
                if (!itk_store_commit(self->store, &error)) {
                        itk_execution_store_failed(self, error);
                        itk_store_rollback(self->store);
                        /* The run ended in this very batch: its end is still
                         * announced, but as the store's failure (a Cancel stays
                         * a cancel). */
                        if (itk_status_is_terminal(self->status))
                                itk_execution_rewrite_end(self);
                }
        }
        pending = g_steal_pointer(&self->announcements);
        self->announcements = g_array_new(FALSE, FALSE, sizeof(Announcement));
        for (guint i = 0; i < pending->len; i++) {
                Announcement *announcement = &g_array_index(pending, Announcement, i);
                gboolean next_is_log =
                        i + 1 < pending->len &&
                        g_array_index(pending, Announcement, i + 1).kind == ANNOUNCE_LOG;

                /* Consecutive lines are bracketed, so that the bus can carry
                 * them in one message (LogBatch) instead of one per line. */
                if (announcement->kind == ANNOUNCE_LOG && next_is_log && !in_burst) {
                        in_burst = TRUE;
                        g_signal_emit(self, signals[SIGNAL_LOG_BURST], 0, TRUE);
                }
                itk_execution_announce(self, announcement->kind, announcement->a, announcement->b,
                                       announcement->t, announcement->s1, announcement->s2);
                g_free(announcement->s1);
                g_free(announcement->s2);
                if (in_burst && !next_is_log) {
                        in_burst = FALSE;
                        g_signal_emit(self, signals[SIGNAL_LOG_BURST], 0, FALSE);
                }
        }
        /* Coalesced properties go out on the leading edge: when a period has
         * passed since their last announcement, at once, right behind the
         * step transitions that changed them; within a period, by the timer. */
        if (self->progress_id != 0 &&
            g_get_monotonic_time() - self->props_announced_at >= COALESCE_PERIOD_MS * 1000)
                itk_execution_coalesce_cb(self);
}

/* --- announcements ----------------------------------------------------------- */

static void
itk_execution_notify(ItkExecution *self, guint props)
{
        itk_execution_announce(self, ANNOUNCE_PROPERTIES, (int)props, 0, 0, NULL, NULL);
}

static void
itk_execution_announce_step(ItkExecution *self, StepState *state, const char *message)
{
        itk_execution_persist(self, state, FALSE);
        itk_execution_announce(self, ANNOUNCE_STEP, state->index, (int)state->status, 0,
                               state->path, message != NULL ? message : "");
}

static void
itk_execution_log(ItkExecution *self, ItkLogPriority priority, const char *step_id,
                  const char *message)
{
        g_autofree char *redacted = NULL;
        gint64 now = g_get_real_time();

        /* Nothing follows Finished. */
        if (itk_status_is_terminal(self->status))
                return;
        redacted = itk_redactor_apply(self->redactor, message);
        if (self->store != NULL) {
                g_autoptr(GError) error = NULL;
                if (!itk_execution_store_begin(self, &error) ||
                    !itk_store_append_log(self->store, self->id, now, priority,
                                          step_id != NULL ? step_id : "", redacted, &error) ||
                    !itk_execution_store_commit(self, &error)) {
                        itk_execution_store_failed(self, error);
                        if (self->batch_depth == 0)
                                itk_store_rollback(self->store);
                }
        } else {
                LogLine *line = g_new0(LogLine, 1);
                line->usec = now;
                line->priority = priority;
                line->step_id = g_strdup(step_id != NULL ? step_id : "");
                line->message = g_strdup(redacted);
                g_queue_push_tail(&self->log_ring, line);
                if (self->log_ring.length > LOG_RING_MAX) {
                        LogLine *old = g_queue_pop_head(&self->log_ring);
                        g_free(old->step_id);
                        g_free(old->message);
                        g_free(old);
                }
        }
        itk_execution_announce(self, ANNOUNCE_LOG, (int)priority, 0, (guint64)now,
                               step_id != NULL ? step_id : "", redacted);
}

static void
itk_execution_step_log_cb(gpointer user_data, ItkLogPriority priority, const char *step_id,
                          const char *message)
{
        itk_execution_log(ITK_EXECUTION(user_data), priority, step_id, message);
}

/* A step's burst of log lines (one read of a script's output): one store
 * transaction, their Log signals after its commit. */
static void
itk_execution_step_log_batch_cb(gpointer user_data, gboolean begin)
{
        ItkExecution *self = ITK_EXECUTION(user_data);

        if (begin)
                itk_execution_batch_begin(self);
        else
                itk_execution_batch_end(self);
}

static void
itk_execution_transition(ItkExecution *self, ItkStatus status, guint extra_props)
{
        ItkStatus previous = self->status;

        g_assert(!itk_status_is_terminal(previous));
        if (previous == status)
                return;
        self->status = status;
        itk_execution_persist(self, NULL, TRUE);
        /* Coalesced properties are current when a status is announced. */
        itk_execution_notify(self, ITK_EXECUTION_PROP_STATUS | extra_props |
                                           itk_execution_take_pending_props(self));
        itk_execution_announce(self, ANNOUNCE_STATUS, (int)status, (int)previous, 0, NULL, NULL);
}

/* Recomputes CurrentStep/CurrentStepId/CurrentStepName from the frames. */
static void
itk_execution_update_current(ItkExecution *self)
{
        int index = -1;
        const char *id = "";
        const char *name = "";

        if (!itk_status_is_terminal(self->status) && self->status != ITK_STATUS_PENDING &&
            self->top != NULL) {
                StepState *state = frame_current(self->top);
                if (self->root->cursor < self->root->states->len)
                        index = (int)self->root->cursor;
                if (state != NULL) {
                        id = state->path;
                        name = state->def->name;
                }
        }
        if (index == self->current_step && g_strcmp0(id, self->current_step_id) == 0 &&
            g_strcmp0(name, self->current_step_name) == 0)
                return;
        self->current_step = index;
        g_free(self->current_step_id);
        self->current_step_id = g_strdup(id);
        g_free(self->current_step_name);
        self->current_step_name = g_strdup(name);
        itk_execution_defer_notify(self, ITK_EXECUTION_PROP_CURRENT_STEP);
}

static double
itk_execution_compute_progress(ItkExecution *self)
{
        guint done = 0;
        guint total = self->root->n_main;

        for (guint i = 0; i < total; i++) {
                StepState *state = g_ptr_array_index(self->root->states, i);
                if (state->status != ITK_STEP_PENDING && state->status != ITK_STEP_RUNNING)
                        done++;
        }
        return total > 0 ? (double)done / total : 1.0;
}

/* Returns TRUE when Progress changed since it was last announced. */
static gboolean
itk_execution_refresh_progress(ItkExecution *self)
{
        double progress = itk_execution_compute_progress(self);

        if (progress == self->progress)
                return FALSE;
        self->progress = progress;
        return TRUE;
}

/* The coalesced properties that changed; clears them and their timer. Every
 * caller announces them, so this is when the period starts again. */
static guint
itk_execution_take_pending_props(ItkExecution *self)
{
        guint props = self->pending_props & ~ITK_EXECUTION_PROP_PROGRESS;

        if ((self->pending_props & ITK_EXECUTION_PROP_PROGRESS) &&
            itk_execution_refresh_progress(self))
                props |= ITK_EXECUTION_PROP_PROGRESS;
        self->pending_props = 0;
        g_clear_handle_id(&self->progress_id, g_source_remove);
        if (props != 0)
                self->props_announced_at = g_get_monotonic_time();
        return props;
}

static gboolean
itk_execution_coalesce_cb(gpointer user_data)
{
        ItkExecution *self = user_data;
        guint props;

        self->progress_id = 0;
        props = itk_execution_take_pending_props(self);
        if (props != 0)
                itk_execution_notify(self, props);
        return G_SOURCE_REMOVE;
}

static void
itk_execution_defer_notify(ItkExecution *self, guint props)
{
        self->pending_props |= props;
        if (self->progress_id == 0 && !itk_status_is_terminal(self->status))
                self->progress_id =
                        g_timeout_add(COALESCE_PERIOD_MS, itk_execution_coalesce_cb, self);
}

/* Progress is computed only when announced, so a long playbook does not pay
 * for it on every step. */
static void
itk_execution_update_progress(ItkExecution *self)
{
        itk_execution_defer_notify(self, ITK_EXECUTION_PROP_PROGRESS);
}

/* --- finishing ------------------------------------------------------------------- */

static void
itk_execution_clear_retry(ItkExecution *self)
{
        g_clear_pointer(&self->retry_timer, itk_timer_free);
        self->retry_state = NULL;
        self->retry_frame = NULL;
}

static void
itk_execution_finish(ItkExecution *self, ItkStatus status, const char *error)
{
        ItkStatus previous = self->status;
        g_autofree char *redacted = NULL;
        guint props = ITK_EXECUTION_PROP_STATUS | ITK_EXECUTION_PROP_FINISHED_AT;

        if (itk_status_is_terminal(previous))
                return;
        g_assert(self->op == NULL);

        g_clear_handle_id(&self->advance_id, g_source_remove);
        g_clear_handle_id(&self->pending_timeout_id, g_source_remove);
        g_clear_handle_id(&self->store_fail_id, g_source_remove);
        itk_execution_clear_retry(self);
        /* The end is announced even when the store cannot take it: clients
         * must learn that the run is over (the journal has why). */
        if (self->store_error != NULL) {
                /* Announcements still queued belong to the transaction that
                 * failed: they go, and the end follows what clients saw. */
                if (!self->store_finishing) {
                        for (guint i = 0; i < self->announcements->len; i++) {
                                Announcement *a =
                                        &g_array_index(self->announcements, Announcement, i);
                                g_free(a->s1);
                                g_free(a->s2);
                        }
                        g_array_set_size(self->announcements, 0);
                }
                previous = self->announced_status;
                self->store_finishing = TRUE;
                if (status != ITK_STATUS_CANCELLED) {
                        status = ITK_STATUS_FAILED;
                        error = self->store_error;
                }
        }

        /* Steps still running (the innermost and the playbook.run steps around
         * it) end with the run. */
        for (Frame *frame = self->top; frame != NULL; frame = frame->parent) {
                StepState *state = frame_current(frame);
                if (state != NULL && state->status == ITK_STEP_RUNNING) {
                        state->status = status == ITK_STATUS_CANCELLED ? ITK_STEP_CANCELLED
                                                                       : ITK_STEP_FAILED;
                        state->finished_at = g_get_real_time();
                        itk_execution_announce_step(self, state, NULL);
                }
        }

        if (error != NULL && *error != '\0') {
                redacted = itk_redactor_apply(self->redactor, error);
                g_free(self->error);
                self->error = g_steal_pointer(&redacted);
                props |= ITK_EXECUTION_PROP_ERROR;
        }
        /* Watchers of its browser see the run end; then its sessions (its
         * browser context) end with it. */
        if (self->live_view != NULL) {
                g_autofree char *why =
                        g_strdup_printf("the run ended: %s", itk_status_to_string(status));
                itk_live_view_close_all(self->live_view, why);
        }
        itk_step_sessions_close(self->sessions);
        self->status = status;
        self->finished_at = g_get_real_time();
        if (self->pause_requested) {
                self->pause_requested = FALSE;
                props |= ITK_EXECUTION_PROP_PAUSE_REQUESTED;
        }
        itk_timer_group_pause(self->timers);

        itk_execution_persist(self, NULL, TRUE);
        itk_execution_update_current(self);
        itk_execution_defer_notify(self, ITK_EXECUTION_PROP_PROGRESS);
        props |= itk_execution_take_pending_props(self);
        itk_execution_notify(self, props);
        itk_execution_announce(self, ANNOUNCE_STATUS, (int)status, (int)previous, 0, NULL, NULL);
        itk_execution_announce(self, ANNOUNCE_FINISHED, (int)status, 0, 0, self->error, NULL);
}

/* --- running steps ------------------------------------------------------------ */

static void
attempt_free(Attempt *attempt)
{
        g_clear_handle_id(&attempt->watchdog_id, g_source_remove);
        g_clear_pointer(&attempt->timeout, itk_timer_free);
        g_clear_object(&attempt->cancellable);
        g_clear_pointer(&attempt->ctx, itk_step_context_unref);
        g_clear_object(&attempt->self);
        g_free(attempt);
}

/* An Ignition API token is NAME:KEY; the key alone is just as secret. */
static void
itk_execution_add_secret(ItkExecution *self, const char *secret)
{
        const char *colon = secret != NULL ? strchr(secret, ':') : NULL;

        itk_redactor_add_secret(self->redactor, secret);
        /* Any secret may hold a ':' ("pw:x"): the part after it is only
         * masked alone when it is long enough to be one. */
        if (colon != NULL && strlen(colon + 1) >= ITK_REDACTOR_MIN_SHARED)
                itk_redactor_add_secret(self->redactor, colon + 1);
}

static void
itk_execution_secret_used_cb(const char *secret, gpointer user_data)
{
        itk_execution_add_secret(ITK_EXECUTION(user_data), secret);
}

static JsonNode *
itk_execution_render_params(ItkExecution *self, Frame *frame, StepState *state, GError **error)
{
        ItkTemplateScope scope = {
                .parameters = frame->parameters,
                .variables = frame->variables,
                .step_outputs = frame->outputs,
                .known_steps = frame->known_steps,
                .credential_params = frame->credential_params,
                .credential_lookup = self->credential_lookup,
                .credential_data = self->credential_data,
                .secret_used = itk_execution_secret_used_cb,
                .secret_data = self,
        };

        if (state->def->parameters == NULL) {
                JsonNode *empty = json_node_new(JSON_NODE_OBJECT);
                json_node_take_object(empty, json_object_new());
                return empty;
        }
        /* Code parameters get each value escaped for its spot. */
        return itk_code_template_render_params(&scope, state->def->type, state->def->parameters,
                                               error);
}

static double
itk_execution_step_timeout(ItkExecution *self, StepState *state)
{
        gpointer value;

        if (self->timeout_overrides != NULL &&
            g_hash_table_lookup_extended(self->timeout_overrides, state->path, NULL, &value))
                return (double)GPOINTER_TO_UINT(value);
        return state->def->timeout;
}

static void
itk_execution_attempt_timeout_cb(gpointer user_data)
{
        Attempt *attempt = user_data;

        g_clear_pointer(&attempt->timeout, itk_timer_free);
        if (attempt->abandon != ABANDON_NONE)
                return;
        attempt->abandon = ABANDON_TIMEOUT;
        g_cancellable_cancel(attempt->cancellable);
}

/* Moves @frame's cursor past @state and goes on (or stays paused). */
static void
itk_execution_move_on(ItkExecution *self, Frame *frame)
{
        frame->cursor++;
        itk_execution_update_current(self);
        if (self->status == ITK_STATUS_RUNNING)
                itk_execution_schedule_advance(self);
}

static void
itk_execution_step_back(ItkExecution *self, Frame *frame)
{
        StepState *state = frame_current(frame);

        if (state != NULL && state->status != ITK_STEP_PENDING) {
                step_state_reset(state);
                g_hash_table_remove(frame->outputs, state->def->id);
                itk_execution_announce_step(self, state, "reset");
        }
        if (frame->cursor > frame_phase_start(frame)) {
                frame->cursor--;
                state = frame_current(frame);
                step_state_reset(state);
                g_hash_table_remove(frame->outputs, state->def->id);
                itk_execution_announce_step(self, state, "reset");
        }
        self->debug_failed = NULL;
        itk_execution_update_current(self);
        itk_execution_update_progress(self);
        if (self->status == ITK_STATUS_RUNNING) {
                /* Going back is an explicit request to run that step. */
                self->debug_release = TRUE;
                itk_execution_schedule_advance(self);
        }
}

static void
itk_execution_mark_skipped(ItkExecution *self, Frame *frame, StepState *state)
{
        state->status = ITK_STEP_SKIPPED;
        state->finished_at = g_get_real_time();
        if (self->debug_failed == state)
                self->debug_failed = NULL;
        itk_execution_announce_step(self, state, "skipped");
        itk_execution_update_progress(self);
        itk_execution_move_on(self, frame);
}

static void
itk_execution_attempt_done_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        Attempt *attempt = user_data;
        ItkExecution *self = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) output = itk_step_run_finish(result, &error);
        Frame *frame = attempt->frame;
        StepState *state = attempt->state;
        Abandon abandon = attempt->abandon;
        double timeout_seconds = attempt->timeout_seconds;

        if (attempt->orphaned) {
                /* The watchdog ended the run long ago: nothing to say any more. */
                g_debug("execution %s: step '%s' returned after all; result dropped",
                        itk_execution_get_id(attempt->self), state->path);
                attempt_free(attempt);
                return;
        }
        self = g_object_ref(attempt->self);
        g_assert(self->op == attempt);
        self->op = NULL;
        attempt_free(attempt);

        itk_execution_batch_begin(self);
        if (self->store_error != NULL && abandon != ABANDON_CANCEL)
                abandon = ABANDON_STORE;
        switch (abandon) {
        case ABANDON_CANCEL:
                itk_execution_finish(self, ITK_STATUS_CANCELLED, NULL);
                break;
        case ABANDON_STORE:
                itk_execution_finish(self, ITK_STATUS_FAILED, self->store_error);
                break;
        case ABANDON_SKIP:
                itk_execution_mark_skipped(self, frame, state);
                break;
        case ABANDON_SKIP_BACK:
                itk_execution_step_back(self, frame);
                break;
        case ABANDON_TIMEOUT: {
                g_autofree char *message = g_strdup_printf("timed out after %g s", timeout_seconds);
                itk_execution_attempt_failed(self, frame, state, message);
                break;
        }
        case ABANDON_NONE:
                if (output != NULL)
                        itk_execution_step_succeeded(self, frame, state, g_steal_pointer(&output));
                else
                        itk_execution_attempt_failed(self, frame, state, error->message);
                break;
        }
        /* The step boundary: start the next step in the same batch, so one
         * transaction holds "N completed" and "N+1 running". */
        if (self->advance_id != 0 && self->status == ITK_STATUS_RUNNING && self->op == NULL) {
                g_clear_handle_id(&self->advance_id, g_source_remove);
                itk_execution_advance(self);
        }
        itk_execution_batch_end(self);
        g_object_unref(self);
}

/* The gateway of a step: the run's option or credential first, else the
 * nearest playbook parameter of that name (old playbooks pass gateway_url). */
static const char *
itk_execution_frame_setting(ItkExecution *self, Frame *frame, const char *name,
                            const char *preferred)
{
        if (preferred != NULL && *preferred != '\0')
                return preferred;
        for (; frame != NULL; frame = frame->parent) {
                JsonNode *node = json_object_get_member(frame->parameters, name);
                if (node != NULL && JSON_NODE_HOLDS_VALUE(node) &&
                    json_node_get_value_type(node) == G_TYPE_STRING &&
                    *json_node_get_string(node) != '\0')
                        return json_node_get_string(node);
        }
        return NULL;
}

static void itk_execution_push_frame(ItkExecution *self, Frame *frame, StepState *state,
                                     JsonObject *params);

static gboolean
itk_execution_is_secret_cb(gpointer data, const char *value)
{
        ItkExecution *self = data;
        g_autofree char *redacted = itk_redactor_apply(self->redactor, value);

        return g_strcmp0(redacted, value) != 0;
}

static void itk_execution_artifact_cb(gpointer data, const char *step_id, const char *path,
                                      const char *content_type, GTask *task);

static ItkStepContext *
itk_execution_new_context(ItkExecution *self, Frame *frame, StepState *state)
{
        ItkStepContext *ctx = itk_step_context_new(state->path);

        itk_step_context_set_log_func(ctx, itk_execution_step_log_cb, self);
        itk_step_context_set_log_batch_func(ctx, itk_execution_step_log_batch_cb, self);
        itk_step_context_set_variables(ctx, frame->variables);
        itk_step_context_set_timer_group(ctx, self->timers);
        itk_step_context_set_work_dir(ctx, self->work_dir);
        itk_step_context_set_playbook_dir(ctx, itk_playbook_get_dir(frame->playbook));
        itk_step_context_set_gateway_url(
                ctx, itk_execution_frame_setting(self, frame, "gateway_url", self->gateway_url));
        itk_step_context_set_gateway_token(
                ctx,
                itk_execution_frame_setting(self, frame, "gateway_token", self->gateway_token));
        itk_step_context_set_python(ctx, self->python);
        itk_step_context_set_sessions(ctx, self->sessions);
        itk_step_context_set_secret_func(ctx, itk_execution_is_secret_cb, self);
        itk_step_context_set_artifact_func(ctx, itk_execution_artifact_cb, self);
        return ctx;
}

static void
itk_execution_start_attempt(ItkExecution *self, Frame *frame, StepState *state)
{
        const ItkStepHandler *handler;
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) params = NULL;
        Attempt *attempt;
        double timeout;

        state->attempts++;
        state->status = ITK_STEP_RUNNING;
        if (state->attempts == 1)
                state->started_at = g_get_real_time();
        g_clear_pointer(&state->error, g_free);
        itk_execution_update_current(self);
        /* The step's row records the transition; the run's row (current
         * step included) is written at the run's own transitions. */
        itk_execution_persist(self, state, FALSE);
        itk_execution_announce(self, ANNOUNCE_STEP, state->index, (int)state->status, 0,
                               state->path, "");

        params = itk_execution_render_params(self, frame, state, &error);
        if (params == NULL) {
                itk_execution_attempt_failed(self, frame, state, error->message);
                return;
        }
        if (g_strcmp0(state->def->type, "playbook.run") == 0) {
                itk_execution_push_frame(self, frame, state, json_node_get_object(params));
                return;
        }
        /* Loads the step family's module on its first use. */
        handler = itk_step_registry_resolve(state->def->type, &error);
        if (handler == NULL) {
                itk_execution_attempt_failed(self, frame, state, error->message);
                return;
        }

        if (handler->run_sync != NULL) {
                /* A step that never waits: done before this returns. */
                g_autoptr(ItkStepContext) ctx = itk_execution_new_context(self, frame, state);
                g_autoptr(JsonNode) output =
                        handler->run_sync(ctx, json_node_get_object(params), &error);
                if (output != NULL)
                        itk_execution_step_succeeded(self, frame, state, g_steal_pointer(&output));
                else
                        itk_execution_attempt_failed(self, frame, state, error->message);
                return;
        }

        attempt = g_new0(Attempt, 1);
        attempt->self = g_object_ref(self);
        attempt->state = state;
        attempt->frame = frame;
        attempt->cancellable = g_cancellable_new();
        attempt->pausable = handler->pausable;
        attempt->ctx = itk_execution_new_context(self, frame, state);
        timeout = itk_execution_step_timeout(self, state);
        attempt->timeout_seconds = timeout;
        if (timeout > 0)
                attempt->timeout = itk_timer_new(self->timers, (guint64)(timeout * 1000.0),
                                                 itk_execution_attempt_timeout_cb, attempt);
        self->op = attempt;
        handler->run(attempt->ctx, json_node_get_object(params), attempt->cancellable,
                     itk_execution_attempt_done_cb, attempt);
}

static void
itk_execution_retry_cb(gpointer user_data)
{
        ItkExecution *self = user_data;
        Frame *frame = self->retry_frame;
        StepState *state = self->retry_state;

        itk_execution_clear_retry(self);
        itk_execution_batch_begin(self);
        itk_execution_start_attempt(self, frame, state);
        itk_execution_batch_end(self);
}

static void itk_execution_frame_ended(ItkExecution *self, Frame *frame, const char *failure);

/* A failed step whose on_failure stops its frame: roll back or end it. */
static void
itk_execution_frame_fail(ItkExecution *self, Frame *frame, StepState *state, const char *message)
{
        g_autofree char *failure = g_strdup_printf("Step '%s' failed: %s", state->def->id, message);

        if (frame->in_rollback) {
                /* A rollback step stopped the rollback; the run keeps its first error. */
                itk_execution_frame_ended(self, frame, frame->failure);
                return;
        }
        if (state->def->on_failure == ITK_ON_FAILURE_ROLLBACK &&
            frame->states->len > frame->n_main) {
                frame->failure = g_steal_pointer(&failure);
                frame->in_rollback = TRUE;
                frame->cursor = frame->n_main;
                itk_execution_log(self, ITK_LOG_WARNING, state->path, "running the rollback steps");
                itk_execution_update_current(self);
                if (self->status == ITK_STATUS_RUNNING)
                        itk_execution_schedule_advance(self);
                return;
        }
        itk_execution_frame_ended(self, frame, failure);
}

static void
itk_execution_attempt_failed(ItkExecution *self, Frame *frame, StepState *state,
                             const char *message)
{
        g_autofree char *redacted = itk_redactor_apply(self->redactor, message);
        ItkStepDef *def = state->def;

        if (self->debug_mode) {
                /* Debug mode: the failure pauses the run; Resume re-runs the
                 * step, Skip skips it. No retries, no on_failure. */
                state->status = ITK_STEP_FAILED;
                state->finished_at = g_get_real_time();
                g_free(state->error);
                state->error = g_strdup(redacted);
                itk_execution_announce_step(self, state, redacted);
                self->debug_failed = state;
                if (self->status == ITK_STATUS_RUNNING) {
                        guint props =
                                self->pause_requested ? ITK_EXECUTION_PROP_PAUSE_REQUESTED : 0;
                        self->pause_requested = FALSE;
                        itk_timer_group_pause(self->timers);
                        itk_execution_transition(self, ITK_STATUS_PAUSED, props);
                }
                return;
        }

        if (state->attempts <= def->retry_count) {
                g_autofree char *line = g_strdup_printf(
                        "attempt %u of %u failed: %s; retrying in %g s", state->attempts,
                        def->retry_count + 1, redacted, def->retry_delay);
                itk_execution_log(self, ITK_LOG_WARNING, state->path, line);
                self->retry_frame = frame;
                self->retry_state = state;
                self->retry_timer = itk_timer_new(
                        self->timers,
                        def->retry_delay > 0 ? (guint64)(def->retry_delay * 1000.0) : 0,
                        itk_execution_retry_cb, self);
                return;
        }

        state->status = ITK_STEP_FAILED;
        state->finished_at = g_get_real_time();
        g_free(state->error);
        state->error = g_strdup(redacted);
        itk_execution_announce_step(self, state, redacted);
        itk_execution_update_progress(self);

        if (def->on_failure == ITK_ON_FAILURE_CONTINUE) {
                itk_execution_move_on(self, frame);
                return;
        }
        itk_execution_frame_fail(self, frame, state, redacted);
}

static void
itk_execution_step_succeeded(ItkExecution *self, Frame *frame, StepState *state, JsonNode *output)
{
        /* Later steps read the real output; everything shown gets the masked copy. */
        state->status = ITK_STEP_COMPLETED;
        state->finished_at = g_get_real_time();
        g_clear_pointer(&state->output, json_node_unref);
        state->output = itk_redactor_is_empty(self->redactor)
                                ? json_node_ref(output)
                                : itk_redactor_apply_json(self->redactor, output);
        g_hash_table_replace(frame->outputs, state->def->id, output);
        itk_execution_announce_step(self, state, NULL);
        itk_execution_update_progress(self);
        itk_execution_move_on(self, frame);
}

static JsonNode *
itk_execution_nested_output(Frame *frame, const char *status)
{
        g_autoptr(JsonBuilder) builder = json_builder_new();
        guint executed = 0;

        json_builder_begin_object(builder);
        json_builder_set_member_name(builder, "playbook");
        json_builder_add_string_value(builder, frame->playbook->id);
        json_builder_set_member_name(builder, "status");
        json_builder_add_string_value(builder, status);
        json_builder_set_member_name(builder, "steps");
        json_builder_begin_array(builder);
        for (guint i = 0; i < frame->states->len; i++) {
                StepState *state = g_ptr_array_index(frame->states, i);
                if (state->status == ITK_STEP_PENDING)
                        continue;
                if (state->status == ITK_STEP_COMPLETED || state->status == ITK_STEP_FAILED)
                        executed++;
                json_builder_begin_object(builder);
                json_builder_set_member_name(builder, "step_id");
                json_builder_add_string_value(builder, state->def->id);
                json_builder_set_member_name(builder, "step_name");
                json_builder_add_string_value(builder, state->def->name);
                json_builder_set_member_name(builder, "status");
                json_builder_add_string_value(builder, itk_step_status_to_string(state->status));
                json_builder_end_object(builder);
        }
        json_builder_end_array(builder);
        json_builder_set_member_name(builder, "steps_executed");
        json_builder_add_int_value(builder, executed);
        json_builder_end_object(builder);
        return json_builder_get_root(builder);
}

static void
itk_execution_frame_ended(ItkExecution *self, Frame *frame, const char *failure)
{
        Frame *parent = frame->parent;
        StepState *parent_step = frame->parent_step;
        g_autoptr(JsonNode) output = NULL;
        g_autofree char *message = NULL;

        if (parent == NULL) {
                itk_execution_finish(
                        self, failure != NULL ? ITK_STATUS_FAILED : ITK_STATUS_COMPLETED, failure);
                return;
        }
        output = itk_execution_nested_output(frame, failure != NULL ? "failed" : "completed");
        if (failure != NULL)
                message = g_strdup_printf("nested playbook '%s' failed: %s", frame->playbook->id,
                                          failure);
        self->top = parent;
        frame_free(frame);
        if (message != NULL)
                itk_execution_attempt_failed(self, parent, parent_step, message);
        else
                itk_execution_step_succeeded(self, parent, parent_step, g_steal_pointer(&output));
}

static gboolean
itk_execution_chain_has(Frame *frame, const char *playbook_id)
{
        for (; frame != NULL; frame = frame->parent)
                if (g_strcmp0(frame->playbook->id, playbook_id) == 0)
                        return TRUE;
        return FALSE;
}

static void
itk_execution_push_frame(ItkExecution *self, Frame *frame, StepState *state, JsonObject *params)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkPlaybook) child = NULL;
        g_autoptr(JsonObject) given = json_object_new();
        g_autoptr(JsonObject) bound = NULL;
        g_autoptr(GPtrArray) states = NULL;
        g_autofree char *prefix = NULL;
        g_autofree char *line = NULL;
        const char *id = NULL;
        Frame *nested;
        JsonObjectIter iter;
        const char *name;
        JsonNode *value;

        if (json_object_has_member(params, "playbook") &&
            JSON_NODE_HOLDS_VALUE(json_object_get_member(params, "playbook")))
                id = json_object_get_string_member(params, "playbook");
        if (id == NULL || *id == '\0') {
                itk_execution_attempt_failed(self, frame, state,
                                             "playbook.run needs a 'playbook' parameter");
                return;
        }
        if (frame->depth + 1 > ITK_PLAYBOOK_MAX_NESTING) {
                g_autofree char *message =
                        g_strdup_printf("nested playbook '%s' is deeper than %d levels", id,
                                        ITK_PLAYBOOK_MAX_NESTING);
                itk_execution_attempt_failed(self, frame, state, message);
                return;
        }
        if (itk_execution_chain_has(frame, id)) {
                g_autofree char *message =
                        g_strdup_printf("nested playbook '%s' reaches itself", id);
                itk_execution_attempt_failed(self, frame, state, message);
                return;
        }
        if (self->resolve == NULL) {
                itk_execution_attempt_failed(self, frame, state,
                                             "nested playbooks are not available here");
                return;
        }
        child = self->resolve(id, self->resolve_data, &error);
        if (child == NULL) {
                itk_execution_attempt_failed(self, frame, state, error->message);
                return;
        }
        json_object_iter_init(&iter, params);
        while (json_object_iter_next(&iter, &name, &value))
                if (g_strcmp0(name, "playbook") != 0)
                        json_object_set_member(given, name, json_node_copy(value));
        bound = itk_playbook_bind_parameters(child, given, &error);
        if (bound == NULL) {
                g_autofree char *message =
                        g_strdup_printf("nested playbook '%s': %s", id, error->message);
                itk_execution_attempt_failed(self, frame, state, message);
                return;
        }

        prefix = g_strconcat(state->path, "/", NULL);
        states = itk_execution_new_states(self, child, prefix);
        g_clear_pointer(&state->children, g_ptr_array_unref);
        g_clear_pointer(&state->child_playbook, itk_playbook_unref);
        state->children = g_ptr_array_ref(states);
        state->child_playbook = itk_playbook_ref(child);
        nested = frame_new(child, prefix, states, bound);
        nested->parent = frame;
        nested->parent_step = state;
        nested->depth = frame->depth + 1;
        self->top = nested;

        line = g_strdup_printf("running nested playbook '%s'", id);
        itk_execution_log(self, ITK_LOG_INFO, state->path, line);
        for (guint i = 0; i < states->len; i++)
                itk_execution_announce_step(self, g_ptr_array_index(states, i), NULL);
        itk_execution_update_current(self);
        if (self->status == ITK_STATUS_RUNNING)
                itk_execution_schedule_advance(self);
}

static void
itk_execution_pause_now(ItkExecution *self)
{
        guint props = self->pause_requested ? ITK_EXECUTION_PROP_PAUSE_REQUESTED : 0;

        self->pause_requested = FALSE;
        g_clear_handle_id(&self->advance_id, g_source_remove);
        itk_timer_group_pause(self->timers);
        itk_execution_transition(self, ITK_STATUS_PAUSED, props);
}

/* Runs the run's next move. Returns TRUE when that was a step which
 * completed synchronously and the run may go on at once. */
static gboolean
itk_execution_advance_one(ItkExecution *self)
{
        Frame *frame;
        StepState *state;

        if (self->status == ITK_STATUS_PENDING) {
                self->started_at = g_get_real_time();
                itk_execution_transition(self, ITK_STATUS_RUNNING, ITK_EXECUTION_PROP_STARTED_AT);
                itk_execution_update_current(self);
        }
        if (self->status != ITK_STATUS_RUNNING || self->op != NULL || self->retry_timer != NULL)
                return FALSE;
        if (self->store_error != NULL) {
                itk_execution_finish(self, ITK_STATUS_FAILED, self->store_error);
                return FALSE;
        }

        frame = self->top;
        state = frame_current(frame);
        if (state == NULL) {
                itk_execution_frame_ended(self, frame, frame->in_rollback ? frame->failure : NULL);
                return FALSE;
        }
        if (self->pause_requested) {
                itk_execution_pause_now(self);
                return FALSE;
        }
        if (self->debug_mode && !self->debug_release) {
                itk_execution_pause_now(self);
                return FALSE;
        }
        self->debug_release = FALSE;
        self->debug_failed = NULL;
        itk_execution_start_attempt(self, frame, state);
        return self->op == NULL && self->retry_timer == NULL &&
               self->status == ITK_STATUS_RUNNING && self->advance_id != 0;
}

/* Steps that complete synchronously run back to back in the caller's batch
 * (one store transaction, one main-loop iteration), up to a budget that
 * keeps the loop responsive to Cancel and to other runs. */
#define INLINE_STEPS_MAX 256
#define INLINE_BUDGET_US 1000

static void
itk_execution_advance(ItkExecution *self)
{
        gint64 deadline = g_get_monotonic_time() + INLINE_BUDGET_US;

        for (guint n = 1; itk_execution_advance_one(self); n++) {
                if (n >= INLINE_STEPS_MAX || g_get_monotonic_time() >= deadline)
                        return; /* the scheduled idle goes on */
                g_clear_handle_id(&self->advance_id, g_source_remove);
        }
}

static gboolean
itk_execution_advance_cb(gpointer user_data)
{
        ItkExecution *self = user_data;

        self->advance_id = 0;
        g_object_ref(self);
        itk_execution_batch_begin(self);
        itk_execution_advance(self);
        itk_execution_batch_end(self);
        g_object_unref(self);
        return G_SOURCE_REMOVE;
}

static void
itk_execution_schedule_advance(ItkExecution *self)
{
        if (self->advance_id == 0)
                self->advance_id = g_idle_add(itk_execution_advance_cb, self);
}

/* --- control ------------------------------------------------------------------ */

static gboolean
itk_execution_check_live(ItkExecution *self, gboolean pending_ok, GError **error)
{
        if (itk_status_is_terminal(self->status)) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_NOT_RUNNING, "execution %s is %s", self->id,
                            itk_status_to_string(self->status));
                return FALSE;
        }
        if (self->status == ITK_STATUS_PENDING && !pending_ok) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_STATE,
                            "execution %s is pending: start it first", self->id);
                return FALSE;
        }
        if (self->cancel_requested) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_STATE,
                            "execution %s is being cancelled", self->id);
                return FALSE;
        }
        return TRUE;
}

gboolean
itk_execution_start(ItkExecution *self, GError **error)
{
        g_return_val_if_fail(ITK_IS_EXECUTION(self), FALSE);

        if (!itk_execution_check_live(self, TRUE, error))
                return FALSE;
        if (self->status != ITK_STATUS_PENDING) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_STATE, "execution %s is already %s",
                            self->id, itk_status_to_string(self->status));
                return FALSE;
        }
        g_clear_handle_id(&self->pending_timeout_id, g_source_remove);
        /* The transition to running happens from the main loop, after the
         * caller's reply is on its way. */
        itk_execution_schedule_advance(self);
        return TRUE;
}

/* The handler ignored its cancellable: the run ends cancelled without it
 * (promise 1: Cancel always works), and the bug is named in the journal. */
static gboolean
itk_execution_cancel_watchdog_cb(gpointer user_data)
{
        Attempt *attempt = user_data;
        ItkExecution *self = attempt->self;

        attempt->watchdog_id = 0;
        if (self->op != attempt || itk_status_is_terminal(self->status))
                return G_SOURCE_REMOVE;
        g_warning("execution %s: step '%s' (type %s) did not return within %d ms of Cancel, a bug "
                  "in its handler; the run ends cancelled and a late result is dropped",
                  self->id, attempt->state->path, attempt->state->def->type, CANCEL_WATCHDOG_MS);
        attempt->orphaned = TRUE;
        self->op = NULL;
        g_object_ref(self);
        itk_execution_batch_begin(self);
        itk_execution_finish(self, ITK_STATUS_CANCELLED, NULL);
        itk_execution_batch_end(self);
        g_object_unref(self);
        return G_SOURCE_REMOVE;
}

gboolean
itk_execution_cancel(ItkExecution *self, GError **error)
{
        g_return_val_if_fail(ITK_IS_EXECUTION(self), FALSE);

        if (itk_status_is_terminal(self->status)) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_NOT_RUNNING, "execution %s is %s", self->id,
                            itk_status_to_string(self->status));
                return FALSE;
        }
        if (self->cancel_requested)
                return TRUE;
        self->cancel_requested = TRUE;
        if (self->op != NULL) {
                Attempt *op = self->op;

                /* Ends cancelled once the operation has returned: milliseconds.
                 * Armed first: the handler may return inside the cancel. */
                op->abandon = ABANDON_CANCEL;
                op->watchdog_id =
                        g_timeout_add(CANCEL_WATCHDOG_MS, itk_execution_cancel_watchdog_cb, op);
                g_cancellable_cancel(op->cancellable);
                return TRUE;
        }
        itk_execution_finish(self, ITK_STATUS_CANCELLED, NULL);
        return TRUE;
}

gboolean
itk_execution_pause(ItkExecution *self, GError **error)
{
        g_return_val_if_fail(ITK_IS_EXECUTION(self), FALSE);

        if (!itk_execution_check_live(self, FALSE, error))
                return FALSE;
        if (self->status == ITK_STATUS_PAUSED)
                return TRUE;
        if (self->op != NULL && !(self->op->pausable && self->op->abandon == ABANDON_NONE)) {
                if (!self->pause_requested) {
                        self->pause_requested = TRUE;
                        itk_execution_persist(self, NULL, TRUE);
                        itk_execution_notify(self, ITK_EXECUTION_PROP_PAUSE_REQUESTED);
                }
                return TRUE;
        }
        /* A pausable step, a retry delay, or a step boundary: paused now. */
        itk_execution_pause_now(self);
        return TRUE;
}

gboolean
itk_execution_resume(ItkExecution *self, GError **error)
{
        g_return_val_if_fail(ITK_IS_EXECUTION(self), FALSE);

        if (!itk_execution_check_live(self, FALSE, error))
                return FALSE;
        if (self->status == ITK_STATUS_RUNNING) {
                if (self->pause_requested) {
                        self->pause_requested = FALSE;
                        itk_execution_notify(self, ITK_EXECUTION_PROP_PAUSE_REQUESTED);
                }
                return TRUE;
        }
        if (self->debug_failed != NULL) {
                StepState *state = self->debug_failed;
                /* Resume after a failure in debug mode runs the step again. */
                self->debug_failed = NULL;
                state->status = ITK_STEP_PENDING;
                g_clear_pointer(&state->error, g_free);
                itk_execution_announce_step(self, state, "retry");
        }
        if (self->op == NULL && self->retry_timer == NULL) {
                self->debug_release = TRUE;
                itk_execution_schedule_advance(self);
        }
        itk_timer_group_resume(self->timers);
        itk_execution_transition(self, ITK_STATUS_RUNNING, 0);
        return TRUE;
}

gboolean
itk_execution_skip(ItkExecution *self, GError **error)
{
        StepState *state;

        g_return_val_if_fail(ITK_IS_EXECUTION(self), FALSE);

        if (!itk_execution_check_live(self, FALSE, error))
                return FALSE;
        if (self->op != NULL) {
                self->op->abandon = ABANDON_SKIP;
                g_cancellable_cancel(self->op->cancellable);
                return TRUE;
        }
        if (self->retry_timer != NULL) {
                Frame *frame = self->retry_frame;
                state = self->retry_state;
                itk_execution_clear_retry(self);
                itk_execution_mark_skipped(self, frame, state);
                return TRUE;
        }
        state = frame_current(self->top);
        if (state == NULL) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_STATE,
                            "execution %s has no step left to skip", self->id);
                return FALSE;
        }
        itk_execution_mark_skipped(self, self->top, state);
        return TRUE;
}

gboolean
itk_execution_skip_back(ItkExecution *self, GError **error)
{
        g_return_val_if_fail(ITK_IS_EXECUTION(self), FALSE);

        if (!itk_execution_check_live(self, FALSE, error))
                return FALSE;
        if (self->op != NULL) {
                self->op->abandon = ABANDON_SKIP_BACK;
                g_cancellable_cancel(self->op->cancellable);
                return TRUE;
        }
        if (self->retry_timer != NULL) {
                Frame *frame = self->retry_frame;
                itk_execution_clear_retry(self);
                itk_execution_step_back(self, frame);
                return TRUE;
        }
        itk_execution_step_back(self, self->top);
        return TRUE;
}

gboolean
itk_execution_set_debug_mode(ItkExecution *self, gboolean enabled, GError **error)
{
        g_return_val_if_fail(ITK_IS_EXECUTION(self), FALSE);

        if (itk_status_is_terminal(self->status)) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_NOT_RUNNING, "execution %s is %s", self->id,
                            itk_status_to_string(self->status));
                return FALSE;
        }
        enabled = !!enabled;
        if (self->debug_mode == enabled)
                return TRUE;
        /* Turning debug mode off never resumes a paused run. */
        self->debug_mode = enabled;
        itk_execution_persist(self, NULL, TRUE);
        itk_execution_notify(self, ITK_EXECUTION_PROP_DEBUG_MODE);
        return TRUE;
}

static gboolean
itk_execution_pending_timeout_cb(gpointer user_data)
{
        ItkExecution *self = user_data;

        self->pending_timeout_id = 0;
        if (self->status == ITK_STATUS_PENDING && self->advance_id == 0) {
                itk_execution_log(self, ITK_LOG_NOTICE, "",
                                  "not started in time: cancelling the pending execution");
                itk_execution_finish(self, ITK_STATUS_CANCELLED, NULL);
        }
        return G_SOURCE_REMOVE;
}

static gboolean
itk_execution_put_states(ItkExecution *self, GPtrArray *states, GError **error)
{
        for (guint i = 0; states != NULL && i < states->len; i++) {
                StepState *state = g_ptr_array_index(states, i);

                if (!itk_execution_put_step(self, state, error) ||
                    !itk_execution_put_states(self, state->children, error))
                        return FALSE;
        }
        return TRUE;
}

gboolean
itk_execution_save_end(ItkExecution *self, GError **error)
{
        ItkExecutionRecord record;

        g_return_val_if_fail(ITK_IS_EXECUTION(self), FALSE);

        if (self->store == NULL || self->store_error == NULL || self->end_saved ||
            !itk_status_is_terminal(self->status))
                return TRUE;
        itk_execution_fill_record(self, &record);
        if (!itk_store_begin(self->store, error))
                return FALSE;
        if (!itk_execution_put_states(self, self->root_states, error) ||
            !itk_store_update_execution(self->store, &record, error) ||
            !itk_store_commit(self->store, error)) {
                itk_store_rollback(self->store);
                return FALSE;
        }
        self->end_saved = TRUE;
        return TRUE;
}

void
itk_execution_set_work_dir(ItkExecution *self, const char *dir)
{
        g_free(self->work_dir);
        self->work_dir = g_strdup(dir);
}

void
itk_execution_set_pending_timeout(ItkExecution *self, guint msec)
{
        g_clear_handle_id(&self->pending_timeout_id, g_source_remove);
        if (msec > 0 && self->status == ITK_STATUS_PENDING)
                self->pending_timeout_id =
                        g_timeout_add(msec, itk_execution_pending_timeout_cb, self);
}

/* --- queries -------------------------------------------------------------------- */

static GVariant *
itk_execution_states_to_variant(GPtrArray *states)
{
        GVariantBuilder builder;

        g_variant_builder_init(&builder, G_VARIANT_TYPE("aa{sv}"));
        for (guint i = 0; states != NULL && i < states->len; i++) {
                StepState *state = g_ptr_array_index(states, i);
                g_autofree char *output =
                        state->output != NULL ? itk_value_to_json(state->output) : NULL;

                g_variant_builder_open(&builder, G_VARIANT_TYPE("a{sv}"));
                g_variant_builder_add(&builder, "{sv}", "index", g_variant_new_int32(state->index));
                g_variant_builder_add(&builder, "{sv}", "step-id",
                                      g_variant_new_string(state->path));
                g_variant_builder_add(&builder, "{sv}", "name",
                                      g_variant_new_string(state->def->name));
                g_variant_builder_add(&builder, "{sv}", "type",
                                      g_variant_new_string(state->def->type));
                g_variant_builder_add(
                        &builder, "{sv}", "status",
                        g_variant_new_string(itk_step_status_to_string(state->status)));
                g_variant_builder_add(&builder, "{sv}", "attempts",
                                      g_variant_new_uint32(state->attempts));
                g_variant_builder_add(&builder, "{sv}", "started-at",
                                      g_variant_new_int64(state->started_at));
                g_variant_builder_add(&builder, "{sv}", "finished-at",
                                      g_variant_new_int64(state->finished_at));
                g_variant_builder_add(
                        &builder, "{sv}", "error",
                        g_variant_new_string(state->error != NULL ? state->error : ""));
                g_variant_builder_add(&builder, "{sv}", "output",
                                      g_variant_new_string(output != NULL ? output : ""));
                g_variant_builder_add(&builder, "{sv}", "phase",
                                      g_variant_new_string(state->rollback ? "rollback" : "main"));
                g_variant_builder_add(&builder, "{sv}", "children",
                                      itk_execution_states_to_variant(state->children));
                g_variant_builder_close(&builder);
        }
        return g_variant_builder_end(&builder);
}

GVariant *
itk_execution_get_steps(ItkExecution *self)
{
        return itk_execution_states_to_variant(self->root_states);
}

GVariant *
itk_execution_get_log(ItkExecution *self, guint max, GError **error)
{
        GVariantBuilder builder;
        guint skip = 0;
        guint i = 0;

        if (self->store != NULL)
                return itk_store_get_log(self->store, self->id, max, error);
        if (max > 0 && self->log_ring.length > max)
                skip = self->log_ring.length - max;
        g_variant_builder_init(&builder, G_VARIANT_TYPE("a(tuss)"));
        for (GList *l = self->log_ring.head; l != NULL; l = l->next, i++) {
                LogLine *line = l->data;
                if (i < skip)
                        continue;
                g_variant_builder_add(&builder, "(tuss)", (guint64)line->usec, line->priority,
                                      line->step_id, line->message);
        }
        return g_variant_ref_sink(g_variant_builder_end(&builder));
}

const char *
itk_execution_get_id(ItkExecution *self)
{
        return self->id;
}

const char *
itk_execution_get_object_id(ItkExecution *self)
{
        return self->object_id;
}

const char *
itk_execution_get_playbook_id(ItkExecution *self)
{
        return self->playbook_id;
}

ItkPlaybook *
itk_execution_get_playbook(ItkExecution *self)
{
        return self->playbook;
}

ItkStatus
itk_execution_get_status(ItkExecution *self)
{
        return self->status;
}

gboolean
itk_execution_get_pause_requested(ItkExecution *self)
{
        return self->pause_requested;
}

gboolean
itk_execution_get_debug_mode(ItkExecution *self)
{
        return self->debug_mode;
}

int
itk_execution_get_current_step(ItkExecution *self)
{
        return self->current_step;
}

const char *
itk_execution_get_current_step_id(ItkExecution *self)
{
        return self->current_step_id;
}

const char *
itk_execution_get_current_step_name(ItkExecution *self)
{
        return self->current_step_name;
}

guint
itk_execution_get_total_steps(ItkExecution *self)
{
        return self->playbook->steps->len;
}

double
itk_execution_get_progress(ItkExecution *self)
{
        return self->progress;
}

gint64
itk_execution_get_started_at(ItkExecution *self)
{
        return self->started_at;
}

gint64
itk_execution_get_finished_at(ItkExecution *self)
{
        return self->finished_at;
}

const char *
itk_execution_get_error(ItkExecution *self)
{
        return self->error;
}

guint32
itk_execution_get_started_by_uid(ItkExecution *self)
{
        return self->uid;
}

/* --- object ----------------------------------------------------------------------- */

static gboolean
itk_execution_is_secret_name(const char *name)
{
        static const char *const words[] = { "password", "passwd",  "pass",   "secret",
                                             "token",    "api_key", "apikey", NULL };
        g_autofree char *lower = g_ascii_strdown(name, -1);

        for (guint i = 0; words[i] != NULL; i++)
                if (strstr(lower, words[i]) != NULL)
                        return TRUE;
        return FALSE;
}

static void
itk_execution_log_line_free(gpointer data)
{
        LogLine *line = data;
        g_free(line->step_id);
        g_free(line->message);
        g_free(line);
}

static void
itk_execution_dispose(GObject *object)
{
        ItkExecution *self = ITK_EXECUTION(object);

        g_clear_handle_id(&self->advance_id, g_source_remove);
        g_clear_handle_id(&self->pending_timeout_id, g_source_remove);
        g_clear_handle_id(&self->progress_id, g_source_remove);
        g_clear_handle_id(&self->store_fail_id, g_source_remove);
        itk_execution_clear_retry(self);
        G_OBJECT_CLASS(itk_execution_parent_class)->dispose(object);
}

static void
itk_execution_finalize(GObject *object)
{
        ItkExecution *self = ITK_EXECUTION(object);

        while (self->top != NULL) {
                Frame *parent = self->top->parent;
                frame_free(self->top);
                self->top = parent;
        }
        g_clear_pointer(&self->root_states, g_ptr_array_unref);
        g_clear_pointer(&self->live_view, itk_live_view_free);
        g_clear_pointer(&self->sessions, itk_step_sessions_free);
        g_clear_pointer(&self->artifacts, g_ptr_array_unref);
        g_clear_pointer(&self->timers, itk_timer_group_free);
        g_queue_clear_full(&self->log_ring, itk_execution_log_line_free);
        g_array_unref(self->announcements);
        g_clear_pointer(&self->playbook, itk_playbook_unref);
        g_clear_pointer(&self->timeout_overrides, g_hash_table_unref);
        g_clear_pointer(&self->redactor, itk_redactor_free);
        if (self->gateway_token != NULL)
                memset(self->gateway_token, 0, strlen(self->gateway_token));
        g_free(self->gateway_token);
        g_free(self->id);
        g_free(self->object_id);
        g_free(self->playbook_id);
        g_free(self->work_dir);
        g_free(self->gateway_url);
        g_free(self->python);
        g_free(self->error);
        g_free(self->store_error);
        g_free(self->current_step_id);
        g_free(self->current_step_name);
        G_OBJECT_CLASS(itk_execution_parent_class)->finalize(object);
}

static void
itk_execution_class_init(ItkExecutionClass *klass)
{
        GObjectClass *object_class = G_OBJECT_CLASS(klass);

        object_class->dispose = itk_execution_dispose;
        object_class->finalize = itk_execution_finalize;

        /* (int status, int previous), ItkStatus values. */
        signals[SIGNAL_STATUS_CHANGED] =
                g_signal_new("status-changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
                             NULL, NULL, G_TYPE_NONE, 2, G_TYPE_INT, G_TYPE_INT);
        /* (int index, string step_id, int ItkStepStatus, string message) */
        signals[SIGNAL_STEP_CHANGED] = g_signal_new(
                "step-changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                G_TYPE_NONE, 4, G_TYPE_INT, G_TYPE_STRING, G_TYPE_INT, G_TYPE_STRING);
        /* (guint64 usec, guint priority, string step_id, string message) */
        signals[SIGNAL_LOG] = g_signal_new("log", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
                                           NULL, NULL, NULL, G_TYPE_NONE, 4, G_TYPE_UINT64,
                                           G_TYPE_UINT, G_TYPE_STRING, G_TYPE_STRING);
        /* (gboolean begin): brackets two or more "log" emissions that were
         * committed together (a burst of a script's output). */
        signals[SIGNAL_LOG_BURST] =
                g_signal_new("log-burst", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
                             NULL, NULL, G_TYPE_NONE, 1, G_TYPE_BOOLEAN);
        /* (int status, string error), exactly once, last. */
        signals[SIGNAL_FINISHED] =
                g_signal_new("finished", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                             NULL, G_TYPE_NONE, 2, G_TYPE_INT, G_TYPE_STRING);
        /* (guint ItkExecutionProp flags) */
        signals[SIGNAL_PROPERTIES_CHANGED] =
                g_signal_new("properties-changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
                             NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_UINT);
}

static void
itk_execution_session_changed_cb(gpointer user_data, const char *name, gpointer session)
{
        ItkExecution *self = user_data;

        if (!g_str_equal(name, "browser"))
                return;
        self->browser_session = session;
        if (self->live_view != NULL)
                itk_live_view_set_session(self->live_view, session);
}

static const char *
itk_execution_live_step_cb(gpointer user_data)
{
        return itk_execution_get_current_step_id(user_data);
}

ItkLiveView *
itk_execution_get_live_view(ItkExecution *self, GError **error)
{
        if (itk_status_is_terminal(self->status)) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_NOT_RUNNING,
                            "execution %s has ended: its browser is closed", self->id);
                return NULL;
        }
        if (self->live_view == NULL) {
                self->live_view = itk_live_view_new("browser", itk_execution_live_step_cb, self);
                itk_live_view_set_session(self->live_view, self->browser_session);
        }
        return self->live_view;
}

void
itk_execution_log_operator(ItkExecution *self, const char *message)
{
        itk_execution_log(self, ITK_LOG_NOTICE, self->current_step_id, message);
}

static void
itk_execution_init(ItkExecution *self)
{
        self->current_step = -1;
        self->current_step_id = g_strdup("");
        self->current_step_name = g_strdup("");
        self->error = g_strdup("");
        self->timers = itk_timer_group_new();
        self->sessions = itk_step_sessions_new();
        itk_step_sessions_set_changed_func(self->sessions, itk_execution_session_changed_cb, self);
        self->redactor = itk_redactor_new();
        self->announcements = g_array_new(FALSE, FALSE, sizeof(Announcement));
        g_queue_init(&self->log_ring);
}

static char *
itk_execution_new_id(void)
{
        return g_uuid_string_random();
}

/* The new run's rows, in one transaction. A failure is the store's, said so:
 * the caller refuses the start with it. */
static gboolean
itk_execution_record_new(ItkExecution *self, const ItkExecutionRecord *record, GError **error)
{
        g_autoptr(GError) local = NULL;

        if (itk_store_begin(self->store, &local) &&
            itk_store_insert_execution(self->store, record, &local)) {
                guint i;

                for (i = 0; i < self->root_states->len; i++)
                        if (!itk_execution_put_step(self, g_ptr_array_index(self->root_states, i),
                                                    &local))
                                break;
                if (i == self->root_states->len && itk_store_commit(self->store, &local))
                        return TRUE;
        }
        g_set_error(error, ITK_ERROR, ITK_ERROR_STORE_FAILED,
                    "the history store cannot record a new run, so none is started until it "
                    "can: %s",
                    local->message);
        return FALSE;
}

/* How the run was started besides its parameters, for the history (and a
 * client's "run again"): names and numbers, passed through the redactor all
 * the same (a gateway URL may carry a password). NULL when there is none. */
static char *
itk_execution_options_json(ItkExecution *self, const ItkExecutionConfig *config)
{
        g_autoptr(JsonObject) object = json_object_new();
        g_autoptr(JsonNode) node = NULL;
        g_autoptr(JsonNode) redacted = NULL;

        if (config->credential != NULL && *config->credential != '\0')
                json_object_set_string_member(object, "credential", config->credential);
        if (config->gateway_url != NULL && *config->gateway_url != '\0')
                json_object_set_string_member(object, "gateway-url", config->gateway_url);
        if (config->timeout_overrides != NULL && g_hash_table_size(config->timeout_overrides) > 0) {
                JsonObject *overrides = json_object_new();
                GHashTableIter iter;
                gpointer key, value;

                g_hash_table_iter_init(&iter, config->timeout_overrides);
                while (g_hash_table_iter_next(&iter, &key, &value))
                        json_object_set_int_member(overrides, key, GPOINTER_TO_UINT(value));
                json_object_set_object_member(object, "timeout-overrides", overrides);
        }
        if (json_object_get_size(object) == 0)
                return NULL;
        node = json_node_init_object(json_node_alloc(), object);
        redacted = itk_redactor_apply_json(self->redactor, node);
        return itk_value_to_json(redacted);
}

ItkExecution *
itk_execution_new(const ItkExecutionConfig *config, GError **error)
{
        g_autoptr(ItkExecution) self = NULL;
        g_autoptr(GString) hex = NULL;
        g_autoptr(JsonNode) params_node = NULL;
        g_autoptr(JsonNode) redacted = NULL;
        g_autofree char *params_json = NULL;
        g_autofree char *options_json = NULL;
        JsonObjectIter iter;
        const char *name;
        JsonNode *value;

        g_return_val_if_fail(config != NULL && config->playbook != NULL, NULL);
        g_return_val_if_fail(config->parameters != NULL, NULL);

        self = g_object_new(ITK_TYPE_EXECUTION, NULL);
        self->id = itk_execution_new_id();
        hex = g_string_new(NULL);
        for (const char *p = self->id; *p != '\0'; p++)
                if (*p != '-')
                        g_string_append_c(hex, g_ascii_tolower(*p));
        self->object_id = g_strdup(hex->str);
        self->playbook = itk_playbook_ref(config->playbook);
        self->playbook_id = g_strdup(config->playbook->id != NULL ? config->playbook->id : "");
        self->store = config->store;
        self->work_dir = g_strdup(config->work_dir);
        if (config->runs_dir != NULL) {
                g_autofree char *run_dir =
                        g_build_filename(config->runs_dir, self->object_id, NULL);

                if (g_mkdir_with_parents(run_dir, 0700) != 0) {
                        int errsv = errno;
                        g_set_error(error, ITK_ERROR, ITK_ERROR_FAILED,
                                    "cannot create the run's folder %s: %s", run_dir,
                                    g_strerror(errsv));
                        return NULL;
                }
                g_free(self->work_dir);
                self->work_dir = g_steal_pointer(&run_dir);
        }
        if (config->prepare_run_dir != NULL &&
            !config->prepare_run_dir(self->work_dir, config->parameters, config->prepare_data,
                                     error))
                return NULL;
        self->gateway_url = g_strdup(config->gateway_url);
        self->gateway_token = g_strdup(config->gateway_token);
        self->python = g_strdup(config->python);
        if (config->timeout_overrides != NULL)
                self->timeout_overrides = g_hash_table_ref(config->timeout_overrides);
        self->resolve = config->resolve;
        self->resolve_data = config->resolve_data;
        self->credential_lookup = config->credential_lookup;
        self->credential_data = config->credential_data;
        self->debug_mode = config->debug_mode;
        self->uid = config->started_by_uid;
        self->created_at = g_get_real_time();

        itk_redactor_set_shared(self->redactor, config->shared_secrets);
        for (guint i = 0; config->secrets != NULL && config->secrets[i] != NULL; i++)
                itk_execution_add_secret(self, config->secrets[i]);
        if (config->gateway_token != NULL)
                itk_execution_add_secret(self, config->gateway_token);
        json_object_iter_init(&iter, config->parameters);
        while (json_object_iter_next(&iter, &name, &value)) {
                if (JSON_NODE_HOLDS_VALUE(value) &&
                    json_node_get_value_type(value) == G_TYPE_STRING &&
                    itk_execution_is_secret_name(name) &&
                    /* A name is only a guess ("bypass: on"): not for short values. */
                    strlen(json_node_get_string(value)) >= ITK_REDACTOR_MIN_SHARED)
                        itk_execution_add_secret(self, json_node_get_string(value));
        }

        self->root_states = itk_execution_new_states(self, self->playbook, "");
        self->root = frame_new(self->playbook, "", self->root_states, config->parameters);
        self->top = self->root;

        if (self->store != NULL) {
                ItkExecutionRecord record;

                params_node = json_node_new(JSON_NODE_OBJECT);
                json_node_set_object(params_node, config->parameters);
                redacted = itk_redactor_apply_json(self->redactor, params_node);
                params_json = itk_value_to_json(redacted);
                itk_execution_fill_record(self, &record);
                record.parameters_json = params_json;
                options_json = itk_execution_options_json(self, config);
                record.options_json = options_json;
                /* A run that cannot be recorded does not start: nothing is lost. */
                if (!itk_execution_record_new(self, &record, error)) {
                        itk_store_rollback(self->store);
                        return NULL;
                }
        }
        return g_steal_pointer(&self);
}

void
itk_execution_set_shared_secrets(ItkExecution *self, ItkSecretSet *set)
{
        g_return_if_fail(ITK_IS_EXECUTION(self));

        itk_redactor_set_shared(self->redactor, set);
}

/* --- artifacts --------------------------------------------------------------------------- */

typedef struct {
        ItkExecution *self;
        char *step_id;
        char *name;
        char *content_type;
        GTask *task;
} ArtifactPending;

static void
artifact_pending_free(ArtifactPending *pending)
{
        g_object_unref(pending->self);
        g_free(pending->step_id);
        g_free(pending->name);
        g_free(pending->content_type);
        g_clear_object(&pending->task);
        g_free(pending);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ArtifactPending, artifact_pending_free)

static void
itk_execution_artifact_inspected_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        g_autoptr(ArtifactPending) pending = user_data;
        ItkExecution *self = pending->self;
        g_autoptr(GError) error = NULL;
        g_autofree char *sha256 = NULL;
        guint64 size = 0;
        GVariantBuilder builder;
        ItkArtifactRecord record = {
                .execution_id = self->id,
                .name = pending->name,
                .step_id = pending->step_id,
                .content_type = pending->content_type,
                .created_at = g_get_real_time(),
        };

        (void)source;
        if (!itk_artifact_inspect_finish(result, &size, &sha256, &error)) {
                g_task_return_error(pending->task, g_steal_pointer(&error));
                return;
        }
        record.size = size;
        record.sha256 = sha256;
        /* Stored before it is listed, as the rest of the run. */
        if (self->store != NULL) {
                if (!itk_execution_store_begin(self, &error) ||
                    !itk_store_put_artifact(self->store, &record, &error) ||
                    !itk_execution_store_commit(self, &error)) {
                        if (self->batch_depth == 0)
                                itk_store_rollback(self->store);
                        g_task_return_error(pending->task, g_steal_pointer(&error));
                        return;
                }
        }
        g_variant_builder_init(&builder, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&builder, "{sv}", "name", g_variant_new_string(record.name));
        g_variant_builder_add(&builder, "{sv}", "step", g_variant_new_string(record.step_id));
        g_variant_builder_add(&builder, "{sv}", "size", g_variant_new_uint64(record.size));
        g_variant_builder_add(&builder, "{sv}", "content-type",
                              g_variant_new_string(record.content_type));
        g_variant_builder_add(&builder, "{sv}", "sha256", g_variant_new_string(record.sha256));
        g_variant_builder_add(&builder, "{sv}", "created-at",
                              g_variant_new_int64(record.created_at));
        if (self->artifacts == NULL)
                self->artifacts = g_ptr_array_new_with_free_func((GDestroyNotify)g_variant_unref);
        /* Written again under the same name: the newest replaces it. */
        for (guint i = 0; i < self->artifacts->len; i++) {
                const char *name = NULL;
                if (g_variant_lookup(g_ptr_array_index(self->artifacts, i), "name", "&s", &name) &&
                    g_str_equal(name, record.name)) {
                        g_ptr_array_remove_index(self->artifacts, i);
                        break;
                }
        }
        g_ptr_array_add(self->artifacts, g_variant_ref_sink(g_variant_builder_end(&builder)));
        g_task_return_boolean(pending->task, TRUE);
}

static void
itk_execution_artifact_cb(gpointer data, const char *step_id, const char *path,
                          const char *content_type, GTask *task)
{
        ItkExecution *self = ITK_EXECUTION(data);
        g_autoptr(GTask) owned = task;
        g_autofree char *name = itk_artifact_name_for_path(self->work_dir, path);
        g_autofree char *redacted = NULL;
        ArtifactPending *pending;

        if (name == NULL) {
                g_task_return_new_error(task, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                                        "%s is outside the run's folder: not kept as an artifact",
                                        path);
                return;
        }
        /* A name is shown to every viewer and stored: it must not carry a secret. */
        redacted = itk_redactor_apply(self->redactor, name);
        if (g_strcmp0(redacted, name) != 0) {
                g_task_return_new_error(task, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                                        "the file name %s holds a secret: not kept as an artifact",
                                        redacted);
                return;
        }
        pending = g_new0(ArtifactPending, 1);
        pending->self = g_object_ref(self);
        pending->step_id = g_strdup(step_id != NULL ? step_id : "");
        pending->content_type =
                g_strdup(content_type != NULL ? content_type : itk_artifact_content_type(name));
        pending->name = g_steal_pointer(&name);
        pending->task = g_steal_pointer(&owned);
        itk_artifact_inspect_async(self->work_dir, pending->name,
                                   g_task_get_cancellable(pending->task),
                                   itk_execution_artifact_inspected_cb, pending);
}

GVariant *
itk_execution_list_artifacts(ItkExecution *self)
{
        GVariantBuilder builder;

        g_return_val_if_fail(ITK_IS_EXECUTION(self), NULL);
        g_variant_builder_init(&builder, G_VARIANT_TYPE("aa{sv}"));
        for (guint i = 0; self->artifacts != NULL && i < self->artifacts->len; i++)
                g_variant_builder_add_value(&builder, g_ptr_array_index(self->artifacts, i));
        return g_variant_builder_end(&builder);
}

int
itk_execution_open_artifact(ItkExecution *self, const char *name, GError **error)
{
        g_return_val_if_fail(ITK_IS_EXECUTION(self), -1);

        if (!itk_artifact_name_is_valid(name, error))
                return -1;
        /* Only what a step recorded, not whatever else lies in the folder. */
        for (guint i = 0; self->artifacts != NULL && i < self->artifacts->len; i++) {
                const char *listed = NULL;
                if (g_variant_lookup(g_ptr_array_index(self->artifacts, i), "name", "&s",
                                     &listed) &&
                    g_str_equal(listed, name))
                        return itk_artifact_open(self->work_dir, name, error);
        }
        g_set_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_ARTIFACT,
                    "execution %s has no artifact '%s'", self->id, name);
        return -1;
}
