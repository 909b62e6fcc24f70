/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* BridgeWsInput (client/bridge/bridge-ws-input.c): the per-message size count
 * under libsoup's WebSocket reader, fed frames in pieces of every size. */
#include "bridge.h"

#include <string.h>

#define LIMIT (64 * 1024)

static void
add_frame(GByteArray *out, guint8 opcode, gboolean fin, gsize length, guint64 claimed)
{
        guint8 head[14];
        guint n = 0;
        const guint8 mask[4] = { 1, 2, 3, 4 };

        head[n++] = (fin ? 0x80 : 0) | opcode;
        if (claimed < 126) {
                head[n++] = 0x80 | (guint8)claimed;
        } else if (claimed < 65536) {
                head[n++] = 0x80 | 126;
                head[n++] = (guint8)(claimed >> 8);
                head[n++] = (guint8)claimed;
        } else {
                head[n++] = 0x80 | 127;
                for (int i = 7; i >= 0; i--)
                        head[n++] = (guint8)(claimed >> (8 * i));
        }
        memcpy(head + n, mask, 4);
        n += 4;
        g_byte_array_append(out, head, n);
        for (gsize i = 0; i < length; i++) {
                guint8 byte = (guint8)('a' + i % 26) ^ mask[i % 4];

                g_byte_array_append(out, &byte, 1);
        }
}

static void
count_cb(gpointer data)
{
        (*(guint *)data)++;
}

/* Reads @input through the filter @piece bytes at a time (0: random sizes). */
static GByteArray *
filter(GByteArray *input, gsize piece, guint *too_big)
{
        g_autoptr(GInputStream) memory =
                g_memory_input_stream_new_from_data(input->data, input->len, NULL);
        g_autoptr(GOutputStream) sink = g_memory_output_stream_new_resizable();
        g_autoptr(GIOStream) base = g_simple_io_stream_new(memory, sink);
        g_autoptr(GIOStream) wrapped = bridge_ws_input_wrap(base, LIMIT, count_cb, too_big);
        GPollableInputStream *in = G_POLLABLE_INPUT_STREAM(g_io_stream_get_input_stream(wrapped));
        GByteArray *out = g_byte_array_new();
        guint8 buffer[70000];

        for (;;) {
                g_autoptr(GError) error = NULL;
                gsize want = piece != 0 ? piece : (gsize)g_random_int_range(1, sizeof(buffer));
                gssize n = g_pollable_input_stream_read_nonblocking(in, buffer, want, NULL, &error);

                if (n < 0 && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
                        continue;
                g_assert_no_error(error);
                if (n == 0)
                        break;
                g_byte_array_append(out, buffer, (guint)n);
        }
        return out;
}

static const gsize pieces[] = { 1, 2, 3, 7, 13, 1000, 65536, 0, 0, 0 };

/* A message under the limit, split and with pings between its frames, passes
 * byte for byte, and so does a second one as large: the count starts again. */
static void
test_under_limit_passes(void)
{
        g_autoptr(GByteArray) input = g_byte_array_new();

        add_frame(input, 0x1, FALSE, 20000, 20000);
        add_frame(input, 0x9, TRUE, 125, 125);
        add_frame(input, 0x0, FALSE, 20000, 20000);
        add_frame(input, 0x9, TRUE, 125, 125);
        add_frame(input, 0x0, TRUE, 25536, 25536); /* exactly 64 KiB in all */
        add_frame(input, 0x2, TRUE, 60000, 60000);
        for (gsize i = 0; i < G_N_ELEMENTS(pieces); i++) {
                guint too_big = 0;
                g_autoptr(GByteArray) out = filter(input, pieces[i], &too_big);

                g_assert_cmpuint(too_big, ==, 0);
                g_assert_cmpmem(out->data, out->len, input->data, input->len);
        }
}

/* Continuation frames taking the message over the limit: everything before
 * the offending frame passes, that frame and later data frames are dropped,
 * control frames (the client's close) still pass. */
static void
test_fragments_over_limit_dropped(void)
{
        g_autoptr(GByteArray) input = g_byte_array_new();
        g_autoptr(GByteArray) expected = g_byte_array_new();
        g_autoptr(GByteArray) close = g_byte_array_new();

        add_frame(input, 0x1, FALSE, 16384, 16384);
        for (int i = 0; i < 3; i++)
                add_frame(input, 0x0, FALSE, 16384, 16384);
        g_byte_array_append(expected, input->data, input->len);
        add_frame(input, 0x0, FALSE, 16384, 16384); /* the one too many */
        add_frame(input, 0x0, TRUE, 10, 10);
        add_frame(input, 0x1, TRUE, 10, 10);
        add_frame(close, 0x8, TRUE, 2, 2);
        g_byte_array_append(input, close->data, close->len);
        g_byte_array_append(expected, close->data, close->len);
        for (gsize i = 0; i < G_N_ELEMENTS(pieces); i++) {
                guint too_big = 0;
                g_autoptr(GByteArray) out = filter(input, pieces[i], &too_big);

                g_assert_cmpuint(too_big, ==, 1);
                g_assert_cmpmem(out->data, out->len, expected->data, expected->len);
        }
}

/* A header claiming 2^63 bytes is refused at the header; its length does
 * not overflow the count. */
static void
test_huge_claim_refused(void)
{
        g_autoptr(GByteArray) input = g_byte_array_new();
        g_autoptr(GByteArray) expected = g_byte_array_new();

        add_frame(input, 0x1, FALSE, 100, 100);
        g_byte_array_append(expected, input->data, input->len);
        add_frame(input, 0x0, FALSE, 50, G_GUINT64_CONSTANT(1) << 63);
        for (gsize i = 0; i < G_N_ELEMENTS(pieces); i++) {
                guint too_big = 0;
                g_autoptr(GByteArray) out = filter(input, pieces[i], &too_big);

                g_assert_cmpuint(too_big, ==, 1);
                g_assert_cmpmem(out->data, out->len, expected->data, expected->len);
        }
}

int
main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/bridge-ws-input/under-limit-passes", test_under_limit_passes);
        g_test_add_func("/bridge-ws-input/fragments-over-limit-dropped",
                        test_fragments_over_limit_dropped);
        g_test_add_func("/bridge-ws-input/huge-claim-refused", test_huge_claim_refused);
        return g_test_run();
}
