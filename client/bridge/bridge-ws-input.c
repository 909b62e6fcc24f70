/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* BridgeWsInput: the input side of a WebSocket connection, counting each
 * message's size across its frames.
 *
 * libsoup 3.2's max-incoming-payload-size applies to one frame: a message
 * split into continuation frames grows without bound in its buffer. This
 * stream sits under libsoup's WebSocket code and reads the client's frame
 * headers. When a data frame would take its message past the limit, the
 * owner is told (it closes with 1009 "message too big": libsoup's own
 * too-big path drops the connection without a close frame), and from then
 * on every data frame is read and dropped whole, while control frames
 * (ping, pong, and the client's answering close) still pass, so that the
 * close handshake completes. Control frames count for nothing. */
#include "bridge.h"

#include <string.h>

#define BRIDGE_TYPE_WS_INPUT (bridge_ws_input_get_type())
G_DECLARE_FINAL_TYPE(BridgeWsInput, bridge_ws_input, BRIDGE, WS_INPUT, GFilterInputStream)

/* The longest frame header: 2 bytes, 8 of length, 4 of mask. */
#define HEAD_MAX 14

struct _BridgeWsInput {
        GFilterInputStream parent;
        guint64 max_message;
        guint8 head[HEAD_MAX]; /* the frame header being read, held back until complete */
        guint head_len;
        guint64 payload_left; /* of the current frame, to pass through */
        guint64 message_size; /* data bytes of the current message so far */
        GByteArray *ready;    /* bytes ready for the reader */
        gboolean dropping;    /* the current frame's payload */
        gboolean too_big;     /* a message went over: data frames are dropped */
        void (*too_big_func)(gpointer data);
        gpointer too_big_data;
};

static void bridge_ws_input_pollable_init(GPollableInputStreamInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE(BridgeWsInput, bridge_ws_input, G_TYPE_FILTER_INPUT_STREAM,
                              G_IMPLEMENT_INTERFACE(G_TYPE_POLLABLE_INPUT_STREAM,
                                                    bridge_ws_input_pollable_init))

static guint
head_size(const guint8 *head, guint len)
{
        guint size = 2;

        if (len < 2)
                return 2;
        if ((head[1] & 0x7f) == 126)
                size += 2;
        else if ((head[1] & 0x7f) == 127)
                size += 8;
        if (head[1] & 0x80)
                size += 4;
        return size;
}

static guint64
head_payload_length(const guint8 *head)
{
        guint64 length = head[1] & 0x7f;

        if (length == 126)
                return ((guint64)head[2] << 8) | head[3];
        if (length == 127) {
                length = 0;
                for (guint i = 0; i < 8; i++)
                        length = (length << 8) | head[2 + i];
        }
        return length;
}

/* Moves @data, just read, into ready, frame header by frame header. */
static void
take(BridgeWsInput *self, const guint8 *data, gsize size)
{
        gsize i = 0;

        while (i < size) {
                guint64 length;
                guint8 opcode;

                if (self->payload_left > 0) {
                        gsize n = (gsize)MIN(self->payload_left, (guint64)(size - i));

                        if (!self->dropping)
                                g_byte_array_append(self->ready, data + i, n);
                        self->payload_left -= n;
                        i += n;
                        continue;
                }
                self->head[self->head_len++] = data[i++];
                if (self->head_len < head_size(self->head, self->head_len))
                        continue;
                opcode = self->head[0] & 0x0f;
                length = head_payload_length(self->head);
                self->dropping = FALSE;
                if ((opcode & 0x08) == 0 && !self->too_big) {
                        /* A text or binary frame starts a message, a continuation adds to it. */
                        if (opcode != 0)
                                self->message_size = 0;
                        self->message_size += MIN(length, self->max_message + 1);
                        if (self->message_size > self->max_message) {
                                self->too_big = TRUE;
                                if (self->too_big_func != NULL)
                                        self->too_big_func(self->too_big_data);
                        }
                }
                if ((opcode & 0x08) == 0 && self->too_big)
                        self->dropping = TRUE;
                else
                        g_byte_array_append(self->ready, self->head, self->head_len);
                self->head_len = 0;
                self->payload_left = length;
        }
}

static gssize
give(BridgeWsInput *self, void *buffer, gsize count)
{
        gsize n = MIN(count, (gsize)self->ready->len);

        memcpy(buffer, self->ready->data, n);
        g_byte_array_remove_range(self->ready, 0, n);
        return (gssize)n;
}

static gssize
ws_input_read(BridgeWsInput *self, void *buffer, gsize count, gboolean blocking,
              GCancellable *cancellable, GError **error)
{
        GInputStream *base = g_filter_input_stream_get_base_stream(G_FILTER_INPUT_STREAM(self));
        g_autofree guint8 *data = NULL;
        gssize nread;

        if (self->ready->len > 0 || count == 0)
                return give(self, buffer, count);
        data = g_malloc(count);
        /* Until something is ready: a read of only a partial header gives nothing yet. */
        for (;;) {
                if (blocking)
                        nread = g_input_stream_read(base, data, count, cancellable, error);
                else
                        nread = g_pollable_input_stream_read_nonblocking(
                                G_POLLABLE_INPUT_STREAM(base), data, count, cancellable, error);
                if (nread <= 0)
                        return nread;
                take(self, data, (gsize)nread);
                if (self->ready->len > 0)
                        return give(self, buffer, count);
        }
}

static gssize
bridge_ws_input_read(GInputStream *stream, void *buffer, gsize count, GCancellable *cancellable,
                     GError **error)
{
        return ws_input_read(BRIDGE_WS_INPUT(stream), buffer, count, TRUE, cancellable, error);
}

static gssize
bridge_ws_input_read_nonblocking(GPollableInputStream *stream, void *buffer, gsize count,
                                 GError **error)
{
        return ws_input_read(BRIDGE_WS_INPUT(stream), buffer, count, FALSE, NULL, error);
}

static gboolean
bridge_ws_input_can_poll(GPollableInputStream *stream)
{
        return TRUE;
}

static gboolean
bridge_ws_input_is_readable(GPollableInputStream *stream)
{
        BridgeWsInput *self = BRIDGE_WS_INPUT(stream);
        GInputStream *base = g_filter_input_stream_get_base_stream(G_FILTER_INPUT_STREAM(self));

        return self->ready->len > 0 ||
               g_pollable_input_stream_is_readable(G_POLLABLE_INPUT_STREAM(base));
}

static GSource *
bridge_ws_input_create_source(GPollableInputStream *stream, GCancellable *cancellable)
{
        GInputStream *base = g_filter_input_stream_get_base_stream(G_FILTER_INPUT_STREAM(stream));
        g_autoptr(GSource) base_source =
                g_pollable_input_stream_create_source(G_POLLABLE_INPUT_STREAM(base), NULL);

        return g_pollable_source_new_full(stream, base_source, cancellable);
}

static void
bridge_ws_input_pollable_init(GPollableInputStreamInterface *iface)
{
        iface->can_poll = bridge_ws_input_can_poll;
        iface->is_readable = bridge_ws_input_is_readable;
        iface->create_source = bridge_ws_input_create_source;
        iface->read_nonblocking = bridge_ws_input_read_nonblocking;
}

static void
bridge_ws_input_finalize(GObject *object)
{
        BridgeWsInput *self = BRIDGE_WS_INPUT(object);

        g_byte_array_unref(self->ready);
        G_OBJECT_CLASS(bridge_ws_input_parent_class)->finalize(object);
}

static void
bridge_ws_input_class_init(BridgeWsInputClass *klass)
{
        G_OBJECT_CLASS(klass)->finalize = bridge_ws_input_finalize;
        G_INPUT_STREAM_CLASS(klass)->read_fn = bridge_ws_input_read;
}

static void
bridge_ws_input_init(BridgeWsInput *self)
{
        self->ready = g_byte_array_new();
}

/* A stream like @base whose input counts WebSocket messages up to @max_message
 * bytes, and calls @too_big_func (once) when one is larger. @base stays open
 * as long as the returned stream. */
GIOStream *
bridge_ws_input_wrap(GIOStream *base, gsize max_message, void (*too_big_func)(gpointer data),
                     gpointer data)
{
        g_autoptr(BridgeWsInput) input = g_object_new(BRIDGE_TYPE_WS_INPUT, "base-stream",
                                                      g_io_stream_get_input_stream(base), NULL);
        GIOStream *stream;

        input->max_message = max_message;
        input->too_big_func = too_big_func;
        input->too_big_data = data;
        stream = g_simple_io_stream_new(G_INPUT_STREAM(input), g_io_stream_get_output_stream(base));
        g_object_set_data_full(G_OBJECT(stream), "bridge-base-stream", g_object_ref(base),
                               g_object_unref);
        return stream;
}
