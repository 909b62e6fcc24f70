/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* An asynchronous client of the Ignition gateway HTTP API (GATEWAY-API.md),
 * on libsoup 3. Every call takes a GCancellable and completes within
 * milliseconds of its cancellation (the connection is closed). Errors are
 * ITK_ERROR with messages meant for the execution log; the API token never
 * appears in any of them. Nothing here blocks. */

#define ITK_TYPE_GATEWAY_CLIENT (itk_gateway_client_get_type())
G_DECLARE_FINAL_TYPE(ItkGatewayClient, itk_gateway_client, ITK, GATEWAY_CLIENT, GObject)

typedef enum {
        ITK_GATEWAY_REQUEST_NONE = 0,
        /* No token header (StatusPing works while restarting or with a bad token). */
        ITK_GATEWAY_REQUEST_NO_AUTH = 1 << 0,
        /* Download: the body must start with "PK" (exports and backups). */
        ITK_GATEWAY_REQUEST_EXPECT_ZIP = 1 << 1,
        /* Don't turn {"success": false} or a "problem" in a 200 into an error. */
        ITK_GATEWAY_REQUEST_NO_REFUSAL_CHECK = 1 << 2,
} ItkGatewayRequestFlags;

typedef struct {
        const char *method; /* "GET" when NULL */
        /* Path and query, escaped, from the base URL: "/data/api/v1/gateway-info". */
        const char *path;
        ItkGatewayRequestFlags flags;
        /* What the call does, for the 403 message: "the API token is not
         * permitted to <action>". NULL: "make this call". */
        const char *action;
        /* Request body, at most one of: a file streamed from disk, or JSON text. */
        const char *upload_file;
        const char *upload_content_type; /* "application/octet-stream" when NULL */
        const char *json_body;
        /* The response body is streamed to this file (through a temporary
         * file in the same folder, renamed at the end) instead of parsed. */
        const char *download_file;
        /* Overall limit in ms for this call; 0 = the client's default, G_MAXUINT = none. */
        guint timeout_ms;
} ItkGatewayRequest;

/* @base_url: http(s)://host[:port][/prefix]. @token: NAME:KEY or NULL.
 * Fails with ITK_ERROR_INVALID_PARAMETERS for a bad URL or token. */
ItkGatewayClient *itk_gateway_client_new(const char *base_url, const char *token, GError **error);
const char *itk_gateway_client_get_base_url(ItkGatewayClient *self);
gboolean itk_gateway_client_has_token(ItkGatewayClient *self);
/* Connect timeout (default 10 s) and default overall per-call timeout (60 s). */
void itk_gateway_client_set_timeouts(ItkGatewayClient *self, guint connect_timeout_ms,
                                     guint call_timeout_ms);

/* One request. The result is the parsed JSON body (NULL when the answer had
 * no JSON body; {"path", "size"} for a download), and the HTTP status (0 when no answer
 * came). Errors: ITK_ERROR_FAILED with an explanation of the status
 * (401, 403, 404, 503, redirects, HTML pages, refusals in a 200),
 * ITK_ERROR_NOT_SUPPORTED for a gateway without the REST API (before 8.3),
 * ITK_ERROR_TIMED_OUT, or G_IO_ERROR_CANCELLED. */
void itk_gateway_client_request_async(ItkGatewayClient *self, const ItkGatewayRequest *request,
                                      GCancellable *cancellable, GAsyncReadyCallback callback,
                                      gpointer user_data);
JsonNode *itk_gateway_client_request_finish(ItkGatewayClient *self, GAsyncResult *result,
                                            guint *out_status, GError **error);

/* TRUE when retrying later may help: 503, no answer at all, a call timeout. */
gboolean itk_gateway_client_status_is_transient(guint status, const GError *error);

/* Checks that @path is a complete ZIP archive: the end-of-central-directory
 * record is there and the central directory parses, with every entry inside
 * the file. Reads only the end of the file, asynchronously. */
void itk_gateway_zip_validate_async(const char *path, GCancellable *cancellable,
                                    GAsyncReadyCallback callback, gpointer user_data);
gboolean itk_gateway_zip_validate_finish(GAsyncResult *result, guint *out_entries, GError **error);

G_END_DECLS
