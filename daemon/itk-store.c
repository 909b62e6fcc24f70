/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "itk-store.h"
#include "itk-store-private.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "itk-error.h"
#include "itk-limits.h"

/* "ITKH" in the header's application_id field tells our files from others. */
#define ITK_STORE_APPLICATION_ID 0x49544b48
#define ITK_STORE_BUSY_TIMEOUT_MS 5000
#define ITK_STORE_DEFAULT_LIMIT ITK_LIMIT_HISTORY_DEFAULT
#define ITK_STORE_INTERRUPTED "interrupted: the daemon stopped during this run"
/* Every transition commits a few pages to the WAL; small pages keep the
 * bytes written per commit (and later synced) small. */
#define ITK_STORE_PAGE_SIZE 1024
/* WAL size that wakes the background checkpointer... */
#define ITK_STORE_CHECKPOINT_BYTES (1 << 20)
/* ...and the size at which a committing caller copies the rest by itself. */
#define ITK_STORE_WAL_LIMIT_BYTES (16 << 20)
/* How long the last frames of a burst wait for their checkpoint. */
#define ITK_STORE_CHECKPOINT_TAIL_USEC (100 * G_TIME_SPAN_MILLISECOND)

/* Migration N takes a database at user_version N to N + 1. Append only: a
 * shipped entry never changes, later versions add columns or tables with a
 * new entry (ALTER TABLE ... ADD COLUMN ... DEFAULT ...). */
static const char *const itk_store_migrations[] = {
        /* 0 -> 1: the initial schema. */
        "CREATE TABLE executions ("
        "  id TEXT PRIMARY KEY NOT NULL,"
        "  playbook TEXT NOT NULL DEFAULT '',"
        "  playbook_name TEXT NOT NULL DEFAULT '',"
        "  playbook_version TEXT NOT NULL DEFAULT '',"
        "  domain TEXT NOT NULL DEFAULT '',"
        "  status TEXT NOT NULL,"
        "  error TEXT NOT NULL DEFAULT '',"
        "  parameters TEXT,"
        "  created_at INTEGER NOT NULL DEFAULT 0,"
        "  started_at INTEGER NOT NULL DEFAULT 0,"
        "  finished_at INTEGER NOT NULL DEFAULT 0,"
        "  started_by_uid INTEGER NOT NULL DEFAULT 0,"
        "  debug_mode INTEGER NOT NULL DEFAULT 0,"
        "  total_steps INTEGER NOT NULL DEFAULT 0,"
        "  current_step INTEGER NOT NULL DEFAULT -1"
        ");"
        /* History, newest first; the rowid breaks ties in created_at. */
        "CREATE INDEX executions_created_at ON executions (created_at);"
        /* History filtered by status, and start-up recovery. */
        "CREATE INDEX executions_status ON executions (status, created_at);"
        /* Keyed by run then path: the upsert and GetSteps are prefix lookups,
         * and no position index to maintain on the hot path (sorting one
         * run's steps is cheap). */
        "CREATE TABLE steps ("
        "  execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,"
        "  step_path TEXT NOT NULL,"
        "  position INTEGER NOT NULL,"
        "  name TEXT NOT NULL DEFAULT '',"
        "  type TEXT NOT NULL DEFAULT '',"
        "  status TEXT NOT NULL,"
        "  attempts INTEGER NOT NULL DEFAULT 0,"
        "  started_at INTEGER NOT NULL DEFAULT 0,"
        "  finished_at INTEGER NOT NULL DEFAULT 0,"
        "  error TEXT NOT NULL DEFAULT '',"
        "  output TEXT,"
        "  PRIMARY KEY (execution_id, step_path)"
        ") WITHOUT ROWID;"
        /* Keyed by run then append order, so that an append writes a single
         * b-tree page (no separate index) and the log of a run is a prefix
         * range; seq counts per run. */
        "CREATE TABLE log_lines ("
        "  execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,"
        "  seq INTEGER NOT NULL,"
        "  usec INTEGER NOT NULL,"
        "  priority INTEGER NOT NULL,"
        "  step_id TEXT NOT NULL DEFAULT '',"
        "  message TEXT NOT NULL DEFAULT '',"
        "  PRIMARY KEY (execution_id, seq)"
        ") WITHOUT ROWID;",
        /* 1 -> 2: what GetSteps and Progress show live, so that a run read
         * back from history is the run that was shown: a step's index within
         * its playbook and its phase; the run's progress (-1: not recorded). */
        "ALTER TABLE steps ADD COLUMN step_index INTEGER NOT NULL DEFAULT -1;"
        "ALTER TABLE steps ADD COLUMN phase TEXT NOT NULL DEFAULT 'main';"
        "ALTER TABLE executions ADD COLUMN progress REAL NOT NULL DEFAULT -1;",
        /* 2 -> 3: a page of one playbook's history is a range of this index
         * (GetHistoryPage's "playbook" filter), not a scan of all runs. */
        "CREATE INDEX executions_playbook ON executions (playbook, created_at);",
        /* 3 -> 4: files a run wrote into its folder, recorded when written so
         * the list outlives the daemon and goes with the run. */
        "CREATE TABLE artifacts ("
        "  execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,"
        "  name TEXT NOT NULL,"
        "  step_id TEXT NOT NULL DEFAULT '',"
        "  size INTEGER NOT NULL DEFAULT 0,"
        "  content_type TEXT NOT NULL DEFAULT '',"
        "  sha256 TEXT NOT NULL DEFAULT '',"
        "  created_at INTEGER NOT NULL DEFAULT 0,"
        "  PRIMARY KEY (execution_id, name)"
        ") WITHOUT ROWID;",
        /* 4 -> 5: how a run was started besides its parameters (credential
         * name, gateway-url, timeout-overrides; JSON, redacted, never a
         * secret), for the web UI's "Run again". */
        "ALTER TABLE executions ADD COLUMN options TEXT NOT NULL DEFAULT '';",
};

#define ITK_STORE_SCHEMA_VERSION ((gint64)G_N_ELEMENTS(itk_store_migrations))

#define ITK_STORE_EXECUTION_COLUMNS                                                                \
        "id, playbook, playbook_name, playbook_version, domain, status, error, parameters, "       \
        "created_at, started_at, finished_at, started_by_uid, debug_mode, total_steps, "           \
        "current_step, progress, options"

#define ITK_STORE_FINISHED "('completed', 'failed', 'cancelled')"
#define ITK_STORE_LIVE "('pending', 'running', 'paused')"

typedef enum {
        ITK_STORE_STMT_BEGIN,
        ITK_STORE_STMT_COMMIT,
        ITK_STORE_STMT_ROLLBACK,
        ITK_STORE_STMT_INSERT_EXECUTION,
        ITK_STORE_STMT_UPDATE_EXECUTION_SAME_STATUS,
        ITK_STORE_STMT_UPDATE_EXECUTION,
        ITK_STORE_STMT_PUT_STEP,
        ITK_STORE_STMT_APPEND_LOG,
        ITK_STORE_STMT_INTERRUPT_STEPS,
        ITK_STORE_STMT_INTERRUPT_EXECUTIONS,
        ITK_STORE_STMT_LIST_ALL,
        ITK_STORE_STMT_LIST_STATUS,
        ITK_STORE_STMT_GET_EXECUTION,
        ITK_STORE_STMT_HAS_EXECUTION,
        ITK_STORE_STMT_GET_STEPS,
        ITK_STORE_STMT_GET_LOG,
        ITK_STORE_STMT_DELETE_EXECUTION,
        ITK_STORE_N_STMTS,
} ItkStoreStmtId;

static const char *const itk_store_sql[ITK_STORE_N_STMTS] = {
        /* IMMEDIATE takes the write lock up front: a deferred transaction
         * that must upgrade later can fail with SQLITE_BUSY without waiting. */
        [ITK_STORE_STMT_BEGIN] = "BEGIN IMMEDIATE",
        [ITK_STORE_STMT_COMMIT] = "COMMIT",
        [ITK_STORE_STMT_ROLLBACK] = "ROLLBACK",
        [ITK_STORE_STMT_INSERT_EXECUTION] =
                "INSERT INTO executions (" ITK_STORE_EXECUTION_COLUMNS ") "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, "
                "?17)",
        /* SQLite rewrites the status index entry whenever status is in the
         * SET list, changed or not: most updates (the current step moves)
         * keep the status, and leaving it out saves a page per commit. */
        [ITK_STORE_STMT_UPDATE_EXECUTION_SAME_STATUS] =
                "UPDATE executions SET error = ?3, started_at = ?4, finished_at = ?5, "
                "debug_mode = ?6, current_step = ?7, progress = ?8 WHERE id = ?1 AND status = ?2",
        [ITK_STORE_STMT_UPDATE_EXECUTION] =
                "UPDATE executions SET status = ?2, error = ?3, started_at = ?4, "
                "finished_at = ?5, debug_mode = ?6, current_step = ?7, progress = ?8 WHERE id = ?1",
        /* The position stays that of the first appearance. */
        [ITK_STORE_STMT_PUT_STEP] =
                "INSERT INTO steps (execution_id, step_path, position, name, type, status, "
                "attempts, started_at, finished_at, error, output, step_index, phase) "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) "
                "ON CONFLICT (execution_id, step_path) DO UPDATE SET "
                "name = excluded.name, type = excluded.type, status = excluded.status, "
                "attempts = excluded.attempts, started_at = excluded.started_at, "
                "finished_at = excluded.finished_at, error = excluded.error, "
                "output = excluded.output, step_index = excluded.step_index, "
                "phase = excluded.phase",
        /* The max() is a seek to the end of the run's key range. */
        [ITK_STORE_STMT_APPEND_LOG] =
                "INSERT INTO log_lines (execution_id, seq, usec, priority, step_id, message) "
                "VALUES (?1, (SELECT ifnull(max(seq), 0) + 1 FROM log_lines "
                "WHERE execution_id = ?1), ?2, ?3, ?4, ?5)",
        [ITK_STORE_STMT_INTERRUPT_STEPS] =
                "UPDATE steps SET status = 'failed', finished_at = ?1, "
                "error = CASE WHEN error = '' THEN ?2 ELSE error END "
                "WHERE status = 'running' AND execution_id IN "
                "(SELECT id FROM executions WHERE status IN " ITK_STORE_LIVE ")",
        [ITK_STORE_STMT_INTERRUPT_EXECUTIONS] =
                "UPDATE executions SET status = 'failed', error = ?2, finished_at = ?1 "
                "WHERE status IN " ITK_STORE_LIVE,
        /* The unary + keeps the planner on the created_at index, which
         * yields the order without a sort; most rows are finished anyway. */
        [ITK_STORE_STMT_LIST_ALL] = "SELECT " ITK_STORE_EXECUTION_COLUMNS " FROM executions "
                                    "WHERE +status IN " ITK_STORE_FINISHED " "
                                    "ORDER BY created_at DESC, rowid DESC LIMIT ?1",
        [ITK_STORE_STMT_LIST_STATUS] = "SELECT " ITK_STORE_EXECUTION_COLUMNS " FROM executions "
                                       "WHERE status = ?2 AND status IN " ITK_STORE_FINISHED " "
                                       "ORDER BY created_at DESC, rowid DESC LIMIT ?1",
        [ITK_STORE_STMT_GET_EXECUTION] =
                "SELECT " ITK_STORE_EXECUTION_COLUMNS " FROM executions WHERE id = ?1",
        [ITK_STORE_STMT_HAS_EXECUTION] = "SELECT 1 FROM executions WHERE id = ?1",
        [ITK_STORE_STMT_GET_STEPS] = "SELECT step_path, name, type, status, attempts, "
                                     "started_at, finished_at, error, output, step_index, "
                                     "phase FROM steps "
                                     "WHERE execution_id = ?1 ORDER BY position, step_path",
        [ITK_STORE_STMT_GET_LOG] = "SELECT usec, priority, step_id, message FROM "
                                   "(SELECT seq, usec, priority, step_id, message FROM log_lines "
                                   "WHERE execution_id = ?1 ORDER BY seq DESC LIMIT ?2) "
                                   "ORDER BY seq",
        [ITK_STORE_STMT_DELETE_EXECUTION] = "DELETE FROM executions WHERE id = ?1",
};

struct _ItkStore {
        sqlite3 *db;
        char *path;
        /* Set by itk_store_begin(), cleared by commit/rollback: what the
         * caller believes, whereas sqlite3_get_autocommit() is what is. */
        gboolean in_transaction;
        sqlite3_stmt *stmts[ITK_STORE_N_STMTS];

        /* Checkpoints (the only fsyncs with synchronous=NORMAL) run on a
         * thread with its own connection, never in the caller's commit. */
        int checkpoint_frames;
        int wal_limit_frames;
        GThread *checkpoint_thread;
        sqlite3 *checkpoint_db; /* used by the thread only */
        GMutex mutex;
        GCond cond;
        gboolean checkpoint_requested; /* the rest under mutex */
        gboolean quit;
        int checkpointed_frames; /* WAL frames the last checkpoint copied */
        gint64 tail_since;       /* monotonic time frames were left over, or 0 */
};

/* A cached statement on loan: reset and unbound when it goes out of scope,
 * so no early return can leave one holding a read snapshot or a pointer to
 * the caller's strings. */
typedef sqlite3_stmt ItkStoreStmt;

static void
itk_store_stmt_release(ItkStoreStmt *stmt)
{
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ItkStoreStmt, itk_store_stmt_release)

static ItkStoreStmt *
itk_store_stmt(ItkStore *store, ItkStoreStmtId id)
{
        return store->stmts[id];
}

static void
itk_store_set_error(ItkStore *store, GError **error, const char *what)
{
        g_set_error(error, ITK_ERROR, ITK_ERROR_FAILED, "Failed to %s in history store %s: %s",
                    what, store->path, sqlite3_errmsg(store->db));
}

static void
itk_store_set_no_such_execution(ItkStore *store, GError **error, const char *id)
{
        g_set_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_EXECUTION,
                    "No execution %s in history store %s", id, store->path);
}

/* Steps a statement that returns no rows. A foreign key failure means the
 * run the row belongs to is not there. */
static gboolean
itk_store_step_done(ItkStore *store, ItkStoreStmt *stmt, const char *what, const char *id,
                    GError **error)
{
        int rc = sqlite3_step(stmt);

        if (rc == SQLITE_DONE)
                return TRUE;
        if (rc == SQLITE_CONSTRAINT_FOREIGNKEY && id != NULL)
                itk_store_set_no_such_execution(store, error, id);
        else
                itk_store_set_error(store, error, what);
        return FALSE;
}

static gboolean
itk_store_run(ItkStore *store, ItkStoreStmtId id, const char *what, GError **error)
{
        g_autoptr(ItkStoreStmt) stmt = itk_store_stmt(store, id);

        return itk_store_step_done(store, stmt, what, NULL, error);
}

static int
itk_store_bind_text(ItkStoreStmt *stmt, int index, const char *text)
{
        /* Static: the statement is stepped and unbound before we return. */
        return sqlite3_bind_text(stmt, index, text != NULL ? text : "", -1, SQLITE_STATIC);
}

static int
itk_store_bind_text_or_null(ItkStoreStmt *stmt, int index, const char *text)
{
        if (text == NULL)
                return sqlite3_bind_null(stmt, index);
        return sqlite3_bind_text(stmt, index, text, -1, SQLITE_STATIC);
}

/* Column text as a GVariant string. D-Bus needs valid UTF-8 and a damaged or
 * hand-edited file must not turn into a critical warning, so repair it. */
static GVariant *
itk_store_column_string(ItkStoreStmt *stmt, int column)
{
        const char *text = (const char *)sqlite3_column_text(stmt, column);
        int len = sqlite3_column_bytes(stmt, column);

        if (text == NULL)
                return g_variant_new_string("");
        if (!g_utf8_validate(text, len, NULL))
                return g_variant_new_take_string(g_utf8_make_valid(text, len));
        return g_variant_new_string(text);
}

/* One row of ITK_STORE_EXECUTION_COLUMNS as a{sv}. */
static GVariant *
itk_store_execution_variant(ItkStoreStmt *stmt)
{
        GVariantBuilder builder;

        g_variant_builder_init(&builder, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&builder, "{sv}", "id", itk_store_column_string(stmt, 0));
        g_variant_builder_add(&builder, "{sv}", "playbook", itk_store_column_string(stmt, 1));
        g_variant_builder_add(&builder, "{sv}", "playbook-name", itk_store_column_string(stmt, 2));
        g_variant_builder_add(&builder, "{sv}", "playbook-version",
                              itk_store_column_string(stmt, 3));
        g_variant_builder_add(&builder, "{sv}", "domain", itk_store_column_string(stmt, 4));
        g_variant_builder_add(&builder, "{sv}", "status", itk_store_column_string(stmt, 5));
        g_variant_builder_add(&builder, "{sv}", "error", itk_store_column_string(stmt, 6));
        g_variant_builder_add(&builder, "{sv}", "parameters", itk_store_column_string(stmt, 7));
        g_variant_builder_add(&builder, "{sv}", "created-at",
                              g_variant_new_int64(sqlite3_column_int64(stmt, 8)));
        g_variant_builder_add(&builder, "{sv}", "started-at",
                              g_variant_new_int64(sqlite3_column_int64(stmt, 9)));
        g_variant_builder_add(&builder, "{sv}", "finished-at",
                              g_variant_new_int64(sqlite3_column_int64(stmt, 10)));
        g_variant_builder_add(&builder, "{sv}", "started-by-uid",
                              g_variant_new_uint32((guint32)sqlite3_column_int64(stmt, 11)));
        g_variant_builder_add(&builder, "{sv}", "debug-mode",
                              g_variant_new_boolean(sqlite3_column_int(stmt, 12) != 0));
        g_variant_builder_add(&builder, "{sv}", "total-steps",
                              g_variant_new_int32(sqlite3_column_int(stmt, 13)));
        g_variant_builder_add(&builder, "{sv}", "current-step",
                              g_variant_new_int32(sqlite3_column_int(stmt, 14)));
        g_variant_builder_add(&builder, "{sv}", "progress",
                              g_variant_new_double(sqlite3_column_double(stmt, 15)));
        g_variant_builder_add(&builder, "{sv}", "options", itk_store_column_string(stmt, 16));
        return g_variant_builder_end(&builder);
}

static gboolean
itk_store_exec(ItkStore *store, const char *sql, const char *what, GError **error)
{
        if (sqlite3_exec(store->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
                itk_store_set_error(store, error, what);
                return FALSE;
        }
        return TRUE;
}

static gboolean
itk_store_query_int(ItkStore *store, const char *sql, gint64 *value, GError **error)
{
        sqlite3_stmt *stmt = NULL;
        int rc;

        if (sqlite3_prepare_v2(store->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
                itk_store_set_error(store, error, "read the schema");
                return FALSE;
        }
        rc = sqlite3_step(stmt);
        if (rc != SQLITE_ROW) {
                itk_store_set_error(store, error, "read the schema");
                sqlite3_finalize(stmt);
                return FALSE;
        }
        *value = sqlite3_column_int64(stmt, 0);
        sqlite3_finalize(stmt);
        return TRUE;
}

/* Creates the file 0600 whatever the umask: SQLite would create it 0644 and
 * the history holds (redacted) parameters and step outputs. Never creates
 * the directory: that is the daemon's job, and a missing one is an error. */
static gboolean
itk_store_prepare_file(const char *path, GError **error)
{
        struct stat st;
        int fd;

        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
        if (fd < 0) {
                int errsv = errno;
                g_set_error(error, ITK_ERROR, ITK_ERROR_FAILED,
                            "Failed to open history store %s: %s", path, g_strerror(errsv));
                return FALSE;
        }
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_FAILED,
                            "Failed to open history store %s: not a regular file", path);
                close(fd);
                return FALSE;
        }
        if ((st.st_mode & 07777) != 0600 && fchmod(fd, 0600) < 0) {
                int errsv = errno;
                g_set_error(error, ITK_ERROR, ITK_ERROR_FAILED,
                            "Failed to set the mode of history store %s: %s", path,
                            g_strerror(errsv));
                close(fd);
                return FALSE;
        }
        close(fd);
        return TRUE;
}

/* Refuses another application's database and a newer schema before
 * anything is written to the file (not even the switch to WAL). This is the
 * first read of the file: one that is not a database fails here. */
static gboolean
itk_store_check_identity(ItkStore *store, gint64 *version, GError **error)
{
        gint64 app_id = 0;
        gint64 n_objects = 0;

        if (!itk_store_query_int(store, "PRAGMA application_id", &app_id, error) ||
            !itk_store_query_int(store, "PRAGMA user_version", version, error) ||
            !itk_store_query_int(store, "SELECT count(*) FROM sqlite_schema", &n_objects, error))
                return FALSE;

        if ((app_id != 0 && app_id != ITK_STORE_APPLICATION_ID) ||
            (*version == 0 && n_objects > 0)) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_FAILED,
                            "Failed to open history store %s: the database belongs to "
                            "another application",
                            store->path);
                return FALSE;
        }
        if (*version > ITK_STORE_SCHEMA_VERSION) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_FAILED,
                            "Failed to open history store %s: schema version %" G_GINT64_FORMAT
                            " is newer than this daemon's %" G_GINT64_FORMAT,
                            store->path, *version, ITK_STORE_SCHEMA_VERSION);
                return FALSE;
        }
        return TRUE;
}

static gboolean
itk_store_configure(ItkStore *store, GError **error)
{
        g_autofree char *mode = NULL;
        sqlite3_stmt *stmt = NULL;

        /* Only takes effect on a new, empty file. */
        if (!itk_store_exec(store, "PRAGMA page_size = " G_STRINGIFY(ITK_STORE_PAGE_SIZE),
                            "set the page size", error))
                return FALSE;
        if (sqlite3_prepare_v2(store->db, "PRAGMA journal_mode = WAL", -1, &stmt, NULL) !=
                    SQLITE_OK ||
            sqlite3_step(stmt) != SQLITE_ROW) {
                itk_store_set_error(store, error, "enable write-ahead logging");
                sqlite3_finalize(stmt);
                return FALSE;
        }
        mode = g_strdup((const char *)sqlite3_column_text(stmt, 0));
        sqlite3_finalize(stmt);
        if (g_strcmp0(mode, "wal") != 0) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_FAILED,
                            "Failed to enable write-ahead logging in history store %s "
                            "(journal mode is %s)",
                            store->path, mode != NULL ? mode : "unknown");
                return FALSE;
        }

        /* NORMAL in WAL mode: a commit survives a crash of the process (the
         * WAL is written before COMMIT returns), only not a power loss; the
         * syncs happen at checkpoints. The WAL file is cut back to 16 MiB
         * when it rewinds after a burst. */
        return itk_store_exec(store,
                              "PRAGMA synchronous = NORMAL;"
                              "PRAGMA foreign_keys = ON;"
                              "PRAGMA temp_store = MEMORY;"
                              "PRAGMA journal_size_limit = 16777216;",
                              "configure the connection", error);
}

static gboolean
itk_store_migrate_locked(ItkStore *store, GError **error)
{
        gint64 version = 0;

        /* Again under the lock: another process may have migrated. */
        if (!itk_store_check_identity(store, &version, error))
                return FALSE;
        if (version == ITK_STORE_SCHEMA_VERSION)
                return TRUE;

        for (gint64 v = version; v < ITK_STORE_SCHEMA_VERSION; v++) {
                if (!itk_store_exec(store, itk_store_migrations[v], "migrate the schema", error))
                        return FALSE;
        }
        {
                g_autofree char *sql = g_strdup_printf(
                        "PRAGMA user_version = %" G_GINT64_FORMAT "; PRAGMA application_id = %d",
                        ITK_STORE_SCHEMA_VERSION, ITK_STORE_APPLICATION_ID);
                return itk_store_exec(store, sql, "set the schema version", error);
        }
}

/* Brings the schema to ITK_STORE_SCHEMA_VERSION in one transaction, so a
 * crash mid-way leaves the old version and a concurrent opener waits. */
static gboolean
itk_store_migrate(ItkStore *store, GError **error)
{
        if (!itk_store_exec(store, "BEGIN IMMEDIATE", "lock the schema", error))
                return FALSE;
        if (!itk_store_migrate_locked(store, error)) {
                sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL);
                return FALSE;
        }
        if (!itk_store_exec(store, "COMMIT", "commit the schema", error)) {
                sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL);
                return FALSE;
        }
        return TRUE;
}

static gboolean
itk_store_prepare_statements(ItkStore *store, GError **error)
{
        for (guint i = 0; i < ITK_STORE_N_STMTS; i++) {
                if (sqlite3_prepare_v3(store->db, itk_store_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                       &store->stmts[i], NULL) != SQLITE_OK) {
                        itk_store_set_error(store, error, "prepare a statement");
                        return FALSE;
                }
        }
        return TRUE;
}

static gpointer
itk_store_checkpoint_thread(gpointer user_data)
{
        ItkStore *store = user_data;

        g_mutex_lock(&store->mutex);
        for (;;) {
                int n_log = 0;
                int n_done = 0;
                int rc;

                while (!store->checkpoint_requested && !store->quit) {
                        if (store->tail_since == 0)
                                g_cond_wait(&store->cond, &store->mutex);
                        else if (!g_cond_wait_until(&store->cond, &store->mutex,
                                                    store->tail_since +
                                                            ITK_STORE_CHECKPOINT_TAIL_USEC))
                                break;
                }
                if (store->quit)
                        break;
                store->checkpoint_requested = FALSE;
                store->tail_since = 0;
                g_mutex_unlock(&store->mutex);

                /* PASSIVE never waits for the writer: commits go on while the
                 * frames are copied and synced. */
                rc = sqlite3_wal_checkpoint_v2(store->checkpoint_db, NULL,
                                               SQLITE_CHECKPOINT_PASSIVE, &n_log, &n_done);
                if (rc != SQLITE_OK && rc != SQLITE_BUSY)
                        g_debug("Checkpoint of history store %s failed: %s", store->path,
                                sqlite3_errmsg(store->checkpoint_db));

                g_mutex_lock(&store->mutex);
                store->checkpointed_frames = rc == SQLITE_OK ? n_done : 0;
                /* Busy: the committer is copying the tail itself; look again. */
                if (rc == SQLITE_BUSY && store->tail_since == 0)
                        store->tail_since = g_get_monotonic_time();
        }
        g_mutex_unlock(&store->mutex);
        return NULL;
}

/* After every commit, with the number of frames in the WAL. */
static int
itk_store_wal_hook_cb(void *user_data, sqlite3 *db, const char *schema, int n_frames)
{
        ItkStore *store = user_data;
        int n_new;

        if (n_frames < store->checkpoint_frames)
                return SQLITE_OK;
        /* Under a sustained load the checkpointer never finds the WAL fully
         * copied, so it never rewinds. Past the limit, copy the tail here
         * (the checkpointer copied and synced the bulk) so that the next
         * transaction rewinds. PASSIVE does not wait: if the checkpointer is
         * busy this is BUSY at once, and the next commit tries again. */
        if (n_frames >= store->wal_limit_frames) {
                int rc = sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, NULL,
                                                   NULL);
                if (rc != SQLITE_OK && rc != SQLITE_BUSY)
                        g_debug("Checkpoint of history store %s failed: %s", store->path,
                                sqlite3_errmsg(db));
                return SQLITE_OK;
        }

        g_mutex_lock(&store->mutex);
        /* A count above n_frames is from before the WAL rewound. */
        if (store->checkpointed_frames > n_frames)
                store->checkpointed_frames = 0;
        n_new = n_frames - store->checkpointed_frames;
        if (n_new >= store->checkpoint_frames) {
                if (!store->checkpoint_requested) {
                        store->checkpoint_requested = TRUE;
                        g_cond_signal(&store->cond);
                }
        } else if (n_new > 0 && store->tail_since == 0) {
                /* The WAL rewinds only at a transaction that finds it fully
                 * copied: copy the last frames of a burst a little later. */
                store->tail_since = g_get_monotonic_time();
                g_cond_signal(&store->cond);
        }
        g_mutex_unlock(&store->mutex);
        return SQLITE_OK;
}

static gboolean
itk_store_start_checkpointer(ItkStore *store, GError **error)
{
        gint64 page_size = 0;
        int rc;

        if (!itk_store_query_int(store, "PRAGMA page_size", &page_size, error))
                return FALSE;
        page_size = MAX(page_size, 512);
        store->checkpoint_frames = (int)(ITK_STORE_CHECKPOINT_BYTES / page_size);
        store->wal_limit_frames = (int)(ITK_STORE_WAL_LIMIT_BYTES / page_size);

        /* A library built without threads: SQLite checkpoints in the
         * committer, as by default. */
        if (!sqlite3_threadsafe()) {
                sqlite3_wal_autocheckpoint(store->db, store->checkpoint_frames);
                return TRUE;
        }

        rc = sqlite3_open_v2(store->path, &store->checkpoint_db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
                             NULL);
        if (rc != SQLITE_OK || sqlite3_exec(store->checkpoint_db, "PRAGMA synchronous = NORMAL",
                                            NULL, NULL, NULL) != SQLITE_OK) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_FAILED,
                            "Failed to open history store %s for checkpoints: %s", store->path,
                            store->checkpoint_db != NULL ? sqlite3_errmsg(store->checkpoint_db)
                                                         : sqlite3_errstr(rc));
                return FALSE;
        }
        store->checkpoint_thread =
                g_thread_try_new("itk-store-ckpt", itk_store_checkpoint_thread, store, error);
        if (store->checkpoint_thread == NULL)
                return FALSE;
        /* Replaces SQLite's own hook, which checkpoints in the committer. */
        sqlite3_wal_hook(store->db, itk_store_wal_hook_cb, store);
        return TRUE;
}

static void
itk_store_stop_checkpointer(ItkStore *store)
{
        if (store->checkpoint_thread != NULL) {
                g_mutex_lock(&store->mutex);
                store->quit = TRUE;
                g_cond_signal(&store->cond);
                g_mutex_unlock(&store->mutex);
                g_clear_pointer(&store->checkpoint_thread, g_thread_join);
        }
        if (store->db != NULL)
                sqlite3_wal_hook(store->db, NULL, NULL);
        if (store->checkpoint_db != NULL) {
                sqlite3_close_v2(store->checkpoint_db);
                store->checkpoint_db = NULL;
        }
}

ItkStore *
itk_store_open(const char *path, GError **error)
{
        g_autoptr(ItkStore) store = NULL;
        gint64 version = 0;
        int rc;

        g_return_val_if_fail(path != NULL, NULL);
        g_return_val_if_fail(error == NULL || *error == NULL, NULL);

        if (!itk_store_prepare_file(path, error))
                return NULL;

        store = g_new0(ItkStore, 1);
        store->path = g_strdup(path);
        g_mutex_init(&store->mutex);
        g_cond_init(&store->cond);
        /* One connection per store, used from one thread: no mutexes. The
         * file exists by now, so no CREATE (SQLite would make it 0644). */
        rc = sqlite3_open_v2(path, &store->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
                             NULL);
        if (rc != SQLITE_OK) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_FAILED,
                            "Failed to open history store %s: %s", path,
                            store->db != NULL ? sqlite3_errmsg(store->db) : sqlite3_errstr(rc));
                return NULL;
        }
        sqlite3_extended_result_codes(store->db, 1);
        sqlite3_busy_timeout(store->db, ITK_STORE_BUSY_TIMEOUT_MS);
        if (!itk_store_check_identity(store, &version, error) ||
            !itk_store_configure(store, error) || !itk_store_migrate(store, error) ||
            !itk_store_prepare_statements(store, error) ||
            !itk_store_start_checkpointer(store, error))
                return NULL;

        return g_steal_pointer(&store);
}

void
itk_store_free(ItkStore *store)
{
        gboolean opened;

        if (store == NULL)
                return;
        opened = store->stmts[ITK_STORE_N_STMTS - 1] != NULL;
        itk_store_stop_checkpointer(store);
        for (guint i = 0; i < ITK_STORE_N_STMTS; i++)
                sqlite3_finalize(store->stmts[i]);
        if (store->db != NULL) {
                /* Cheap, and keeps the planner's statistics current; only on
                 * a store that opened fully, never on a foreign file. */
                if (opened && sqlite3_get_autocommit(store->db))
                        sqlite3_exec(store->db, "PRAGMA analysis_limit = 400; PRAGMA optimize",
                                     NULL, NULL, NULL);
                /* Rolls back an open transaction; the last connection to
                 * close checkpoints and removes the WAL. */
                sqlite3_close_v2(store->db);
        }
        g_mutex_clear(&store->mutex);
        g_cond_clear(&store->cond);
        g_free(store->path);
        g_free(store);
}

gboolean
itk_store_begin(ItkStore *store, GError **error)
{
        g_return_val_if_fail(store != NULL, FALSE);

        if (store->in_transaction) {
                g_critical("itk_store_begin: a transaction is already open on %s", store->path);
                g_set_error(error, ITK_ERROR, ITK_ERROR_FAILED,
                            "A transaction is already open on history store %s", store->path);
                return FALSE;
        }
        if (!itk_store_run(store, ITK_STORE_STMT_BEGIN, "begin a transaction", error))
                return FALSE;
        store->in_transaction = TRUE;
        return TRUE;
}

gboolean
itk_store_commit(ItkStore *store, GError **error)
{
        g_return_val_if_fail(store != NULL, FALSE);

        if (!store->in_transaction) {
                g_critical("itk_store_commit: no transaction open on %s", store->path);
                g_set_error(error, ITK_ERROR, ITK_ERROR_FAILED,
                            "No transaction is open on history store %s", store->path);
                return FALSE;
        }
        store->in_transaction = FALSE;
        /* SQLite rolls back by itself on some errors (I/O, full disk). */
        if (sqlite3_get_autocommit(store->db)) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_FAILED,
                            "Failed to commit in history store %s: the transaction was "
                            "rolled back after an error",
                            store->path);
                return FALSE;
        }
        if (!itk_store_run(store, ITK_STORE_STMT_COMMIT, "commit", error)) {
                /* A failed COMMIT (busy) leaves the transaction open; end it so
                 * that the store is always in autocommit mode afterwards. */
                if (!sqlite3_get_autocommit(store->db))
                        itk_store_run(store, ITK_STORE_STMT_ROLLBACK, "roll back", NULL);
                return FALSE;
        }
        return TRUE;
}

void
itk_store_rollback(ItkStore *store)
{
        g_return_if_fail(store != NULL);

        /* Callable on any error path, with or without an open transaction. */
        store->in_transaction = FALSE;
        if (!sqlite3_get_autocommit(store->db))
                itk_store_run(store, ITK_STORE_STMT_ROLLBACK, "roll back", NULL);
}

gboolean
itk_store_insert_execution(ItkStore *store, const ItkExecutionRecord *record, GError **error)
{
        g_autoptr(ItkStoreStmt) stmt = NULL;

        g_return_val_if_fail(store != NULL, FALSE);
        g_return_val_if_fail(record != NULL && record->id != NULL, FALSE);
        g_return_val_if_fail(record->status != NULL, FALSE);

        stmt = itk_store_stmt(store, ITK_STORE_STMT_INSERT_EXECUTION);
        if (itk_store_bind_text(stmt, 1, record->id) != SQLITE_OK ||
            itk_store_bind_text(stmt, 2, record->playbook) != SQLITE_OK ||
            itk_store_bind_text(stmt, 3, record->playbook_name) != SQLITE_OK ||
            itk_store_bind_text(stmt, 4, record->playbook_version) != SQLITE_OK ||
            itk_store_bind_text(stmt, 5, record->domain) != SQLITE_OK ||
            itk_store_bind_text(stmt, 6, record->status) != SQLITE_OK ||
            itk_store_bind_text(stmt, 7, record->error) != SQLITE_OK ||
            itk_store_bind_text_or_null(stmt, 8, record->parameters_json) != SQLITE_OK ||
            sqlite3_bind_int64(stmt, 9, record->created_at) != SQLITE_OK ||
            sqlite3_bind_int64(stmt, 10, record->started_at) != SQLITE_OK ||
            sqlite3_bind_int64(stmt, 11, record->finished_at) != SQLITE_OK ||
            sqlite3_bind_int64(stmt, 12, record->started_by_uid) != SQLITE_OK ||
            sqlite3_bind_int(stmt, 13, record->debug_mode ? 1 : 0) != SQLITE_OK ||
            sqlite3_bind_int(stmt, 14, record->total_steps) != SQLITE_OK ||
            sqlite3_bind_int(stmt, 15, record->current_step) != SQLITE_OK ||
            sqlite3_bind_double(stmt, 16, record->progress) != SQLITE_OK ||
            itk_store_bind_text(stmt, 17,
                                record->options_json != NULL ? record->options_json : "") !=
                    SQLITE_OK) {
                itk_store_set_error(store, error, "insert an execution");
                return FALSE;
        }
        return itk_store_step_done(store, stmt, "insert an execution", NULL, error);
}

static gboolean
itk_store_bind_update(ItkStore *store, ItkStoreStmt *stmt, const ItkExecutionRecord *record,
                      GError **error)
{
        if (itk_store_bind_text(stmt, 1, record->id) != SQLITE_OK ||
            itk_store_bind_text(stmt, 2, record->status) != SQLITE_OK ||
            itk_store_bind_text(stmt, 3, record->error) != SQLITE_OK ||
            sqlite3_bind_int64(stmt, 4, record->started_at) != SQLITE_OK ||
            sqlite3_bind_int64(stmt, 5, record->finished_at) != SQLITE_OK ||
            sqlite3_bind_int(stmt, 6, record->debug_mode ? 1 : 0) != SQLITE_OK ||
            sqlite3_bind_int(stmt, 7, record->current_step) != SQLITE_OK ||
            sqlite3_bind_double(stmt, 8, record->progress) != SQLITE_OK) {
                itk_store_set_error(store, error, "update an execution");
                return FALSE;
        }
        return itk_store_step_done(store, stmt, "update an execution", NULL, error);
}

gboolean
itk_store_update_execution(ItkStore *store, const ItkExecutionRecord *record, GError **error)
{
        g_return_val_if_fail(store != NULL, FALSE);
        g_return_val_if_fail(record != NULL && record->id != NULL, FALSE);
        g_return_val_if_fail(record->status != NULL, FALSE);

        /* First as if the status were unchanged; no row means it changed
         * (or the run is not there). */
        {
                g_autoptr(ItkStoreStmt) stmt =
                        itk_store_stmt(store, ITK_STORE_STMT_UPDATE_EXECUTION_SAME_STATUS);
                if (!itk_store_bind_update(store, stmt, record, error))
                        return FALSE;
                if (sqlite3_changes(store->db) > 0)
                        return TRUE;
        }
        {
                g_autoptr(ItkStoreStmt) stmt =
                        itk_store_stmt(store, ITK_STORE_STMT_UPDATE_EXECUTION);
                if (!itk_store_bind_update(store, stmt, record, error))
                        return FALSE;
                if (sqlite3_changes(store->db) > 0)
                        return TRUE;
        }
        itk_store_set_no_such_execution(store, error, record->id);
        return FALSE;
}

gboolean
itk_store_put_step(ItkStore *store, const ItkStepRecord *record, GError **error)
{
        g_autoptr(ItkStoreStmt) stmt = NULL;

        g_return_val_if_fail(store != NULL, FALSE);
        g_return_val_if_fail(record != NULL && record->execution_id != NULL, FALSE);
        g_return_val_if_fail(record->step_path != NULL && record->status != NULL, FALSE);

        stmt = itk_store_stmt(store, ITK_STORE_STMT_PUT_STEP);
        if (itk_store_bind_text(stmt, 1, record->execution_id) != SQLITE_OK ||
            itk_store_bind_text(stmt, 2, record->step_path) != SQLITE_OK ||
            sqlite3_bind_int(stmt, 3, record->position) != SQLITE_OK ||
            itk_store_bind_text(stmt, 4, record->name) != SQLITE_OK ||
            itk_store_bind_text(stmt, 5, record->type) != SQLITE_OK ||
            itk_store_bind_text(stmt, 6, record->status) != SQLITE_OK ||
            sqlite3_bind_int64(stmt, 7, record->attempts) != SQLITE_OK ||
            sqlite3_bind_int64(stmt, 8, record->started_at) != SQLITE_OK ||
            sqlite3_bind_int64(stmt, 9, record->finished_at) != SQLITE_OK ||
            itk_store_bind_text(stmt, 10, record->error) != SQLITE_OK ||
            itk_store_bind_text_or_null(stmt, 11, record->output_json) != SQLITE_OK ||
            sqlite3_bind_int(stmt, 12, record->index) != SQLITE_OK ||
            itk_store_bind_text(stmt, 13, record->phase != NULL ? record->phase : "main") !=
                    SQLITE_OK) {
                itk_store_set_error(store, error, "store a step");
                return FALSE;
        }
        return itk_store_step_done(store, stmt, "store a step", record->execution_id, error);
}

gboolean
itk_store_append_log(ItkStore *store, const char *execution_id, gint64 usec, guint priority,
                     const char *step_id, const char *message, GError **error)
{
        g_autoptr(ItkStoreStmt) stmt = NULL;

        g_return_val_if_fail(store != NULL, FALSE);
        g_return_val_if_fail(execution_id != NULL, FALSE);

        stmt = itk_store_stmt(store, ITK_STORE_STMT_APPEND_LOG);
        if (itk_store_bind_text(stmt, 1, execution_id) != SQLITE_OK ||
            sqlite3_bind_int64(stmt, 2, usec) != SQLITE_OK ||
            sqlite3_bind_int64(stmt, 3, priority) != SQLITE_OK ||
            itk_store_bind_text(stmt, 4, step_id) != SQLITE_OK ||
            itk_store_bind_text(stmt, 5, message) != SQLITE_OK) {
                itk_store_set_error(store, error, "append a log line");
                return FALSE;
        }
        return itk_store_step_done(store, stmt, "append a log line", execution_id, error);
}

static gint
itk_store_mark_interrupted_locked(ItkStore *store, GError **error)
{
        gint64 now = g_get_real_time();

        {
                g_autoptr(ItkStoreStmt) stmt =
                        itk_store_stmt(store, ITK_STORE_STMT_INTERRUPT_STEPS);
                if (sqlite3_bind_int64(stmt, 1, now) != SQLITE_OK ||
                    itk_store_bind_text(stmt, 2, ITK_STORE_INTERRUPTED) != SQLITE_OK ||
                    !itk_store_step_done(store, stmt, "fail interrupted steps", NULL, error))
                        return -1;
        }
        {
                g_autoptr(ItkStoreStmt) stmt =
                        itk_store_stmt(store, ITK_STORE_STMT_INTERRUPT_EXECUTIONS);
                if (sqlite3_bind_int64(stmt, 1, now) != SQLITE_OK ||
                    itk_store_bind_text(stmt, 2, ITK_STORE_INTERRUPTED) != SQLITE_OK ||
                    !itk_store_step_done(store, stmt, "fail interrupted executions", NULL, error))
                        return -1;
        }
        return sqlite3_changes(store->db);
}

gint
itk_store_mark_interrupted(ItkStore *store, GError **error)
{
        gint n;

        g_return_val_if_fail(store != NULL, -1);

        /* A savepoint: atomic on its own, and nests in a caller's transaction. */
        if (!itk_store_exec(store, "SAVEPOINT itk_interrupted", "begin a savepoint", error))
                return -1;
        n = itk_store_mark_interrupted_locked(store, error);
        if (n < 0) {
                sqlite3_exec(store->db, "ROLLBACK TO itk_interrupted; RELEASE itk_interrupted",
                             NULL, NULL, NULL);
                return -1;
        }
        if (!itk_store_exec(store, "RELEASE itk_interrupted", "commit a savepoint", error)) {
                sqlite3_exec(store->db, "ROLLBACK TO itk_interrupted; RELEASE itk_interrupted",
                             NULL, NULL, NULL);
                return -1;
        }
        return n;
}

GPtrArray *
itk_store_list_executions(ItkStore *store, guint limit, const char *status, GError **error)
{
        g_autoptr(GPtrArray) result = NULL;
        g_autoptr(ItkStoreStmt) stmt = NULL;
        gboolean by_status = status != NULL && *status != '\0';
        int rc;

        g_return_val_if_fail(store != NULL, NULL);

        stmt = itk_store_stmt(store,
                              by_status ? ITK_STORE_STMT_LIST_STATUS : ITK_STORE_STMT_LIST_ALL);
        if (sqlite3_bind_int64(stmt, 1, limit != 0 ? limit : ITK_STORE_DEFAULT_LIMIT) !=
                    SQLITE_OK ||
            (by_status && itk_store_bind_text(stmt, 2, status) != SQLITE_OK)) {
                itk_store_set_error(store, error, "list executions");
                return NULL;
        }
        result = g_ptr_array_new_with_free_func((GDestroyNotify)g_variant_unref);
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
                g_ptr_array_add(result, g_variant_ref_sink(itk_store_execution_variant(stmt)));
        if (rc != SQLITE_DONE) {
                itk_store_set_error(store, error, "list executions");
                return NULL;
        }
        return g_steal_pointer(&result);
}

GVariant *
itk_store_get_execution(ItkStore *store, const char *id, GError **error)
{
        g_autoptr(ItkStoreStmt) stmt = NULL;
        int rc;

        g_return_val_if_fail(store != NULL, NULL);
        g_return_val_if_fail(id != NULL, NULL);

        stmt = itk_store_stmt(store, ITK_STORE_STMT_GET_EXECUTION);
        if (itk_store_bind_text(stmt, 1, id) != SQLITE_OK) {
                itk_store_set_error(store, error, "read an execution");
                return NULL;
        }
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW)
                return g_variant_ref_sink(itk_store_execution_variant(stmt));
        if (rc == SQLITE_DONE)
                itk_store_set_no_such_execution(store, error, id);
        else
                itk_store_set_error(store, error, "read an execution");
        return NULL;
}

/* Tells an empty result from a missing run. */
static gboolean
itk_store_check_execution(ItkStore *store, const char *id, GError **error)
{
        g_autoptr(ItkStoreStmt) stmt = itk_store_stmt(store, ITK_STORE_STMT_HAS_EXECUTION);
        int rc;

        if (itk_store_bind_text(stmt, 1, id) != SQLITE_OK) {
                itk_store_set_error(store, error, "read an execution");
                return FALSE;
        }
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW)
                return TRUE;
        if (rc == SQLITE_DONE)
                itk_store_set_no_such_execution(store, error, id);
        else
                itk_store_set_error(store, error, "read an execution");
        return FALSE;
}

/* One stored step, its fields in the order the live GetSteps gives them. */
typedef struct {
        char *path;
        GVariant *fields; /* a{sv} without "children" */
} ItkStoreStepRow;

static void
itk_store_step_row_free(ItkStoreStepRow *row)
{
        g_free(row->path);
        g_variant_unref(row->fields);
        g_free(row);
}

static ItkStoreStepRow *
itk_store_step_row_new(ItkStoreStmt *stmt)
{
        ItkStoreStepRow *row = g_new0(ItkStoreStepRow, 1);
        GVariantBuilder builder;

        row->path = g_strdup((const char *)sqlite3_column_text(stmt, 0));
        if (row->path == NULL)
                row->path = g_strdup("");
        g_variant_builder_init(&builder, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&builder, "{sv}", "index",
                              g_variant_new_int32(sqlite3_column_int(stmt, 9)));
        g_variant_builder_add(&builder, "{sv}", "step-id", itk_store_column_string(stmt, 0));
        g_variant_builder_add(&builder, "{sv}", "name", itk_store_column_string(stmt, 1));
        g_variant_builder_add(&builder, "{sv}", "type", itk_store_column_string(stmt, 2));
        g_variant_builder_add(&builder, "{sv}", "status", itk_store_column_string(stmt, 3));
        g_variant_builder_add(&builder, "{sv}", "attempts",
                              g_variant_new_uint32((guint32)sqlite3_column_int64(stmt, 4)));
        g_variant_builder_add(&builder, "{sv}", "started-at",
                              g_variant_new_int64(sqlite3_column_int64(stmt, 5)));
        g_variant_builder_add(&builder, "{sv}", "finished-at",
                              g_variant_new_int64(sqlite3_column_int64(stmt, 6)));
        g_variant_builder_add(&builder, "{sv}", "error", itk_store_column_string(stmt, 7));
        g_variant_builder_add(&builder, "{sv}", "output", itk_store_column_string(stmt, 8));
        g_variant_builder_add(&builder, "{sv}", "phase", itk_store_column_string(stmt, 10));
        row->fields = g_variant_ref_sink(g_variant_builder_end(&builder));
        return row;
}

/* The rows under @parent ("" for the top), each with its "children": the
 * same tree the live GetSteps builds from its nested frames. */
static GVariant *
itk_store_steps_tree(GHashTable *by_parent, const char *parent)
{
        GPtrArray *rows = g_hash_table_lookup(by_parent, parent);
        GVariantBuilder builder;

        g_variant_builder_init(&builder, G_VARIANT_TYPE("aa{sv}"));
        for (guint i = 0; rows != NULL && i < rows->len; i++) {
                ItkStoreStepRow *row = g_ptr_array_index(rows, i);
                GVariantIter iter;
                const char *key;
                GVariant *value;

                g_variant_builder_open(&builder, G_VARIANT_TYPE_VARDICT);
                g_variant_iter_init(&iter, row->fields);
                while (g_variant_iter_next(&iter, "{&sv}", &key, &value)) {
                        g_variant_builder_add(&builder, "{sv}", key, value);
                        g_variant_unref(value);
                }
                g_variant_builder_add(&builder, "{sv}", "children",
                                      itk_store_steps_tree(by_parent, row->path));
                g_variant_builder_close(&builder);
        }
        return g_variant_builder_end(&builder);
}

GVariant *
itk_store_get_steps(ItkStore *store, const char *id, GError **error)
{
        g_autoptr(ItkStoreStmt) stmt = NULL;
        g_autoptr(GPtrArray) rows =
                g_ptr_array_new_with_free_func((GDestroyNotify)itk_store_step_row_free);
        g_autoptr(GHashTable) by_parent = NULL;
        int rc;

        g_return_val_if_fail(store != NULL, NULL);
        g_return_val_if_fail(id != NULL, NULL);

        stmt = itk_store_stmt(store, ITK_STORE_STMT_GET_STEPS);
        if (itk_store_bind_text(stmt, 1, id) != SQLITE_OK) {
                itk_store_set_error(store, error, "read steps");
                return NULL;
        }
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
                g_ptr_array_add(rows, itk_store_step_row_new(stmt));
        if (rc != SQLITE_DONE) {
                itk_store_set_error(store, error, "read steps");
                return NULL;
        }
        if (rows->len == 0) {
                g_clear_pointer(&stmt, itk_store_stmt_release);
                if (!itk_store_check_execution(store, id, error))
                        return NULL;
        }
        /* Rows come in order of creation, so each parent's children are in
         * their playbook's order. A child's parent is its path up to the last
         * '/' (step ids hold no '/'). */
        by_parent = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                          (GDestroyNotify)g_ptr_array_unref);
        for (guint i = 0; i < rows->len; i++) {
                ItkStoreStepRow *row = g_ptr_array_index(rows, i);
                const char *slash = strrchr(row->path, '/');
                g_autofree char *parent = slash != NULL
                                                  ? g_strndup(row->path, (gsize)(slash - row->path))
                                                  : g_strdup("");
                GPtrArray *siblings = g_hash_table_lookup(by_parent, parent);

                if (siblings == NULL) {
                        siblings = g_ptr_array_new();
                        g_hash_table_insert(by_parent, g_steal_pointer(&parent), siblings);
                }
                g_ptr_array_add(siblings, row);
        }
        return g_variant_ref_sink(itk_store_steps_tree(by_parent, ""));
}

GVariant *
itk_store_get_log(ItkStore *store, const char *id, guint max, GError **error)
{
        g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE("a(tuss)"));
        g_autoptr(ItkStoreStmt) stmt = NULL;
        guint n = 0;
        int rc;

        g_return_val_if_fail(store != NULL, NULL);
        g_return_val_if_fail(id != NULL, NULL);

        stmt = itk_store_stmt(store, ITK_STORE_STMT_GET_LOG);
        /* A negative LIMIT is no limit. */
        if (itk_store_bind_text(stmt, 1, id) != SQLITE_OK ||
            sqlite3_bind_int64(stmt, 2, max != 0 ? (gint64)max : -1) != SQLITE_OK) {
                itk_store_set_error(store, error, "read the log");
                return NULL;
        }
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                g_variant_builder_add(&builder, "(tu@s@s)", (guint64)sqlite3_column_int64(stmt, 0),
                                      (guint32)sqlite3_column_int64(stmt, 1),
                                      itk_store_column_string(stmt, 2),
                                      itk_store_column_string(stmt, 3));
                n++;
        }
        if (rc != SQLITE_DONE) {
                itk_store_set_error(store, error, "read the log");
                return NULL;
        }
        if (n == 0) {
                g_clear_pointer(&stmt, itk_store_stmt_release);
                if (!itk_store_check_execution(store, id, error))
                        return NULL;
        }
        return g_variant_ref_sink(g_variant_builder_end(&builder));
}

/* Artifacts: not the hot path, so plain prepared statements. */
gboolean
itk_store_put_artifact(ItkStore *store, const ItkArtifactRecord *record, GError **error)
{
        sqlite3_stmt *stmt = NULL;
        gboolean ok;

        g_return_val_if_fail(store != NULL && record != NULL, FALSE);

        if (sqlite3_prepare_v2(store->db,
                               "INSERT OR REPLACE INTO artifacts (execution_id, name, step_id, "
                               "size, content_type, sha256, created_at) "
                               "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                               -1, &stmt, NULL) != SQLITE_OK) {
                itk_store_set_error(store, error, "record an artifact");
                return FALSE;
        }
        if (itk_store_bind_text(stmt, 1, record->execution_id) != SQLITE_OK ||
            itk_store_bind_text(stmt, 2, record->name) != SQLITE_OK ||
            itk_store_bind_text(stmt, 3, record->step_id) != SQLITE_OK ||
            sqlite3_bind_int64(stmt, 4, (gint64)record->size) != SQLITE_OK ||
            itk_store_bind_text(stmt, 5, record->content_type) != SQLITE_OK ||
            itk_store_bind_text(stmt, 6, record->sha256) != SQLITE_OK ||
            sqlite3_bind_int64(stmt, 7, record->created_at) != SQLITE_OK) {
                itk_store_set_error(store, error, "record an artifact");
                sqlite3_finalize(stmt);
                return FALSE;
        }
        ok = itk_store_step_done(store, stmt, "record an artifact", record->execution_id, error);
        sqlite3_finalize(stmt);
        return ok;
}

GVariant *
itk_store_list_artifacts(ItkStore *store, const char *id, GError **error)
{
        g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE("aa{sv}"));
        sqlite3_stmt *stmt = NULL;
        guint n = 0;
        int rc;

        g_return_val_if_fail(store != NULL && id != NULL, NULL);

        if (sqlite3_prepare_v2(store->db,
                               "SELECT name, step_id, size, content_type, sha256, created_at "
                               "FROM artifacts WHERE execution_id = ?1 ORDER BY created_at, name",
                               -1, &stmt, NULL) != SQLITE_OK ||
            itk_store_bind_text(stmt, 1, id) != SQLITE_OK) {
                itk_store_set_error(store, error, "read artifacts");
                sqlite3_finalize(stmt);
                return NULL;
        }
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                g_variant_builder_open(&builder, G_VARIANT_TYPE_VARDICT);
                g_variant_builder_add(&builder, "{sv}", "name", itk_store_column_string(stmt, 0));
                g_variant_builder_add(&builder, "{sv}", "step", itk_store_column_string(stmt, 1));
                g_variant_builder_add(&builder, "{sv}", "size",
                                      g_variant_new_uint64((guint64)sqlite3_column_int64(stmt, 2)));
                g_variant_builder_add(&builder, "{sv}", "content-type",
                                      itk_store_column_string(stmt, 3));
                g_variant_builder_add(&builder, "{sv}", "sha256", itk_store_column_string(stmt, 4));
                g_variant_builder_add(&builder, "{sv}", "created-at",
                                      g_variant_new_int64(sqlite3_column_int64(stmt, 5)));
                g_variant_builder_close(&builder);
                n++;
        }
        sqlite3_finalize(stmt);
        if (rc != SQLITE_DONE) {
                itk_store_set_error(store, error, "read artifacts");
                return NULL;
        }
        if (n == 0 && !itk_store_check_execution(store, id, error))
                return NULL;
        return g_variant_ref_sink(g_variant_builder_end(&builder));
}

gboolean
itk_store_delete_execution(ItkStore *store, const char *id, GError **error)
{
        g_autoptr(ItkStoreStmt) stmt = NULL;

        g_return_val_if_fail(store != NULL, FALSE);
        g_return_val_if_fail(id != NULL, FALSE);

        stmt = itk_store_stmt(store, ITK_STORE_STMT_DELETE_EXECUTION);
        if (itk_store_bind_text(stmt, 1, id) != SQLITE_OK) {
                itk_store_set_error(store, error, "delete an execution");
                return FALSE;
        }
        /* Steps and log lines go with it (ON DELETE CASCADE), atomically. */
        if (!itk_store_step_done(store, stmt, "delete an execution", NULL, error))
                return FALSE;
        if (sqlite3_changes(store->db) == 0) {
                itk_store_set_no_such_execution(store, error, id);
                return FALSE;
        }
        return TRUE;
}

/* --- for itk-store-history.c (itk-store-private.h) ---------------------------------- */

sqlite3 *
itk_store_get_db(ItkStore *store)
{
        return store->db;
}

const char *
itk_store_get_path(ItkStore *store)
{
        return store->path;
}

gboolean
itk_store_in_transaction(ItkStore *store)
{
        return store->in_transaction || !sqlite3_get_autocommit(store->db);
}

const char *
itk_store_execution_columns(void)
{
        return ITK_STORE_EXECUTION_COLUMNS;
}

GVariant *
itk_store_execution_row(sqlite3_stmt *stmt)
{
        return itk_store_execution_variant(stmt);
}
