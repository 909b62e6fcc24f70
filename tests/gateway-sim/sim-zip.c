/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "sim-zip.h"

#include <gio/gio.h>
#include <string.h>

#define ZIP_LOCAL_SIG 0x04034b50u
#define ZIP_CENTRAL_SIG 0x02014b50u
#define ZIP_END_SIG 0x06054b50u
#define ZIP_LOCAL_LEN 30
#define ZIP_CENTRAL_LEN 46
#define ZIP_END_LEN 22
#define ZIP_METHOD_STORED 0
#define ZIP_METHOD_DEFLATE 8

typedef struct {
        char *name;
        guint16 method;
        guint32 crc;
        guint32 compressed;
        guint32 size;
        guint32 offset; /* of the local header */
} ItkSimZipEntry;

struct _ItkSimZipWriter {
        GByteArray *data;
        GByteArray *central;
        guint n_entries;
        guint16 dos_time;
        guint16 dos_date;
};

struct _ItkSimZip {
        GBytes *bytes;
        GArray *entries; /* of ItkSimZipEntry */
};

guint32
itk_sim_crc32(guint32 crc, const guint8 *data, gsize len)
{
        static guint32 table[256];
        static gsize table_ready = 0;

        if (g_once_init_enter(&table_ready)) {
                for (guint32 i = 0; i < 256; i++) {
                        guint32 c = i;
                        for (int k = 0; k < 8; k++)
                                c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
                        table[i] = c;
                }
                g_once_init_leave(&table_ready, 1);
        }
        crc = ~crc;
        for (gsize i = 0; i < len; i++)
                crc = table[(crc ^ data[i]) & 0xff] ^ (crc >> 8);
        return ~crc;
}

static void
itk_sim_put16(GByteArray *buf, guint16 v)
{
        guint8 b[2] = { v & 0xff, v >> 8 };
        g_byte_array_append(buf, b, sizeof(b));
}

static void
itk_sim_put32(GByteArray *buf, guint32 v)
{
        guint8 b[4] = { v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >> 24 };
        g_byte_array_append(buf, b, sizeof(b));
}

static guint16
itk_sim_get16(const guint8 *p)
{
        return (guint16)(p[0] | (p[1] << 8));
}

static guint32
itk_sim_get32(const guint8 *p)
{
        return (guint32)p[0] | ((guint32)p[1] << 8) | ((guint32)p[2] << 16) | ((guint32)p[3] << 24);
}

/* Runs a whole buffer through a zlib converter; in-memory CPU work only. */
static GBytes *
itk_sim_zip_convert(GConverter *converter, const guint8 *in, gsize in_len, gsize max_out,
                    GError **error)
{
        g_autoptr(GByteArray) out = g_byte_array_new();
        gsize in_pos = 0;

        for (;;) {
                guint8 buf[16384];
                gsize read = 0, written = 0;
                GConverterResult res;

                res = g_converter_convert(converter, in + in_pos, in_len - in_pos, buf, sizeof(buf),
                                          G_CONVERTER_INPUT_AT_END, &read, &written, error);
                if (res == G_CONVERTER_ERROR)
                        return NULL;
                in_pos += read;
                if (out->len + written > max_out) {
                        g_set_error(error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE,
                                    "entry inflates beyond %" G_GSIZE_FORMAT " bytes", max_out);
                        return NULL;
                }
                g_byte_array_append(out, buf, written);
                if (res == G_CONVERTER_FINISHED)
                        break;
                if (read == 0 && written == 0) {
                        g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT,
                                            "compressed data ends early");
                        return NULL;
                }
        }
        return g_byte_array_free_to_bytes(g_steal_pointer(&out));
}

ItkSimZipWriter *
itk_sim_zip_writer_new(void)
{
        ItkSimZipWriter *self = g_new0(ItkSimZipWriter, 1);
        g_autoptr(GDateTime) now = g_date_time_new_now_local();

        self->data = g_byte_array_new();
        self->central = g_byte_array_new();
        self->dos_time =
                (guint16)((g_date_time_get_hour(now) << 11) | (g_date_time_get_minute(now) << 5) |
                          (g_date_time_get_second(now) / 2));
        self->dos_date =
                (guint16)(((g_date_time_get_year(now) - 1980) << 9) |
                          (g_date_time_get_month(now) << 5) | g_date_time_get_day_of_month(now));
        return self;
}

void
itk_sim_zip_writer_free(ItkSimZipWriter *self)
{
        if (self == NULL)
                return;
        if (self->data != NULL)
                g_byte_array_unref(self->data);
        g_byte_array_unref(self->central);
        g_free(self);
}

void
itk_sim_zip_writer_add(ItkSimZipWriter *self, const char *name, const void *data, gsize len,
                       gboolean deflate)
{
        g_autoptr(GBytes) packed = NULL;
        guint32 crc = itk_sim_crc32(0, data, len);
        guint32 offset = self->data->len;
        gsize name_len = strlen(name);
        guint16 method = ZIP_METHOD_STORED;
        const guint8 *payload = data;
        gsize payload_len = len;

        g_return_if_fail(self->data != NULL);

        if (deflate && len > 0) {
                g_autoptr(GZlibCompressor) zc =
                        g_zlib_compressor_new(G_ZLIB_COMPRESSOR_FORMAT_RAW, -1);

                /* Compressing cannot fail on memory buffers. */
                packed = itk_sim_zip_convert(G_CONVERTER(zc), data, len, G_MAXSIZE, NULL);
                if (packed != NULL && g_bytes_get_size(packed) < len) {
                        method = ZIP_METHOD_DEFLATE;
                        payload = g_bytes_get_data(packed, &payload_len);
                }
        }

        itk_sim_put32(self->data, ZIP_LOCAL_SIG);
        itk_sim_put16(self->data, 20);
        itk_sim_put16(self->data, 0x0800); /* UTF-8 names */
        itk_sim_put16(self->data, method);
        itk_sim_put16(self->data, self->dos_time);
        itk_sim_put16(self->data, self->dos_date);
        itk_sim_put32(self->data, crc);
        itk_sim_put32(self->data, (guint32)payload_len);
        itk_sim_put32(self->data, (guint32)len);
        itk_sim_put16(self->data, (guint16)name_len);
        itk_sim_put16(self->data, 0);
        g_byte_array_append(self->data, (const guint8 *)name, (guint)name_len);
        g_byte_array_append(self->data, payload, (guint)payload_len);

        itk_sim_put32(self->central, ZIP_CENTRAL_SIG);
        itk_sim_put16(self->central, 20);
        itk_sim_put16(self->central, 20);
        itk_sim_put16(self->central, 0x0800);
        itk_sim_put16(self->central, method);
        itk_sim_put16(self->central, self->dos_time);
        itk_sim_put16(self->central, self->dos_date);
        itk_sim_put32(self->central, crc);
        itk_sim_put32(self->central, (guint32)payload_len);
        itk_sim_put32(self->central, (guint32)len);
        itk_sim_put16(self->central, (guint16)name_len);
        itk_sim_put16(self->central, 0); /* extra */
        itk_sim_put16(self->central, 0); /* comment */
        itk_sim_put16(self->central, 0); /* disk */
        itk_sim_put16(self->central, 0); /* internal attributes */
        itk_sim_put32(self->central, 0); /* external attributes */
        itk_sim_put32(self->central, offset);
        g_byte_array_append(self->central, (const guint8 *)name, (guint)name_len);
        self->n_entries++;
}

GBytes *
itk_sim_zip_writer_finish(ItkSimZipWriter *self)
{
        guint32 cd_offset = self->data->len;

        g_return_val_if_fail(self->data != NULL, NULL);

        g_byte_array_append(self->data, self->central->data, self->central->len);
        itk_sim_put32(self->data, ZIP_END_SIG);
        itk_sim_put16(self->data, 0);
        itk_sim_put16(self->data, 0);
        itk_sim_put16(self->data, (guint16)self->n_entries);
        itk_sim_put16(self->data, (guint16)self->n_entries);
        itk_sim_put32(self->data, self->central->len);
        itk_sim_put32(self->data, cd_offset);
        itk_sim_put16(self->data, 0);
        return g_byte_array_free_to_bytes(g_steal_pointer(&self->data));
}

static void
itk_sim_zip_entry_clear(gpointer p)
{
        ItkSimZipEntry *e = p;
        g_free(e->name);
}

void
itk_sim_zip_free(ItkSimZip *self)
{
        if (self == NULL)
                return;
        g_bytes_unref(self->bytes);
        g_array_unref(self->entries);
        g_free(self);
}

ItkSimZip *
itk_sim_zip_open(GBytes *bytes, GError **error)
{
        g_autoptr(ItkSimZip) self = NULL;
        gsize len = 0;
        const guint8 *buf = g_bytes_get_data(bytes, &len);
        const guint8 *end = NULL;
        guint32 n, cd_size, cd_offset, pos;

        if (len < ZIP_END_LEN || buf == NULL) {
                g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                                    "not a ZIP archive (too short)");
                return NULL;
        }
        /* The end record sits in the last 22 + 65535 (comment) bytes. */
        for (gsize i = len - ZIP_END_LEN + 1; i-- > 0 && len - i <= ZIP_END_LEN + 0xffff;) {
                if (itk_sim_get32(buf + i) == ZIP_END_SIG) {
                        end = buf + i;
                        break;
                }
        }
        if (end == NULL) {
                g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                                    "not a ZIP archive or truncated (no end of central "
                                    "directory)");
                return NULL;
        }
        n = itk_sim_get16(end + 10);
        cd_size = itk_sim_get32(end + 12);
        cd_offset = itk_sim_get32(end + 16);
        if ((gsize)cd_offset + cd_size > (gsize)(end - buf)) {
                g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                                    "ZIP central directory lies outside the archive");
                return NULL;
        }

        self = g_new0(ItkSimZip, 1);
        self->bytes = g_bytes_ref(bytes);
        self->entries = g_array_new(FALSE, TRUE, sizeof(ItkSimZipEntry));
        g_array_set_clear_func(self->entries, itk_sim_zip_entry_clear);

        pos = cd_offset;
        for (guint32 i = 0; i < n; i++) {
                const guint8 *c = buf + pos;
                ItkSimZipEntry e = { 0 };
                guint16 name_len, extra_len, comment_len, lname, lextra;
                gsize data_start;

                if ((gsize)pos + ZIP_CENTRAL_LEN > (gsize)cd_offset + cd_size ||
                    itk_sim_get32(c) != ZIP_CENTRAL_SIG) {
                        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                                    "ZIP central directory entry %u is corrupt", i);
                        return NULL;
                }
                e.method = itk_sim_get16(c + 10);
                e.crc = itk_sim_get32(c + 16);
                e.compressed = itk_sim_get32(c + 20);
                e.size = itk_sim_get32(c + 24);
                name_len = itk_sim_get16(c + 28);
                extra_len = itk_sim_get16(c + 30);
                comment_len = itk_sim_get16(c + 32);
                e.offset = itk_sim_get32(c + 42);
                if ((gsize)pos + ZIP_CENTRAL_LEN + name_len + extra_len + comment_len >
                    (gsize)cd_offset + cd_size) {
                        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                                    "ZIP central directory entry %u is corrupt", i);
                        return NULL;
                }
                if (e.method != ZIP_METHOD_STORED && e.method != ZIP_METHOD_DEFLATE) {
                        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                                    "ZIP entry %u uses unsupported method %u", i, e.method);
                        return NULL;
                }
                /* The local header and the data must precede the directory. */
                if ((gsize)e.offset + ZIP_LOCAL_LEN > cd_offset ||
                    itk_sim_get32(buf + e.offset) != ZIP_LOCAL_SIG) {
                        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                                    "ZIP local header of entry %u is missing", i);
                        return NULL;
                }
                lname = itk_sim_get16(buf + e.offset + 26);
                lextra = itk_sim_get16(buf + e.offset + 28);
                data_start = (gsize)e.offset + ZIP_LOCAL_LEN + lname + lextra;
                if (data_start + e.compressed > cd_offset) {
                        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                                    "ZIP entry %u is truncated", i);
                        return NULL;
                }
                e.name = g_strndup((const char *)c + ZIP_CENTRAL_LEN, name_len);
                g_array_append_val(self->entries, e);
                pos += ZIP_CENTRAL_LEN + name_len + extra_len + comment_len;
        }
        return g_steal_pointer(&self);
}

guint
itk_sim_zip_get_n_entries(ItkSimZip *self)
{
        return self->entries->len;
}

const char *
itk_sim_zip_get_name(ItkSimZip *self, guint index)
{
        g_return_val_if_fail(index < self->entries->len, NULL);
        return g_array_index(self->entries, ItkSimZipEntry, index).name;
}

static ItkSimZipEntry *
itk_sim_zip_lookup(ItkSimZip *self, const char *name)
{
        for (guint i = 0; i < self->entries->len; i++) {
                ItkSimZipEntry *e = &g_array_index(self->entries, ItkSimZipEntry, i);
                if (g_strcmp0(e->name, name) == 0)
                        return e;
        }
        return NULL;
}

gboolean
itk_sim_zip_has_entry(ItkSimZip *self, const char *name)
{
        return itk_sim_zip_lookup(self, name) != NULL;
}

GBytes *
itk_sim_zip_extract(ItkSimZip *self, const char *name, gsize max_size, GError **error)
{
        ItkSimZipEntry *e = itk_sim_zip_lookup(self, name);
        g_autoptr(GBytes) out = NULL;
        const guint8 *buf = g_bytes_get_data(self->bytes, NULL);
        const guint8 *data;

        if (e == NULL) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no entry %s", name);
                return NULL;
        }
        if (e->size > max_size) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE,
                            "entry %s is too large (%u bytes)", name, e->size);
                return NULL;
        }
        data = buf + e->offset + ZIP_LOCAL_LEN + itk_sim_get16(buf + e->offset + 26) +
               itk_sim_get16(buf + e->offset + 28);
        if (e->method == ZIP_METHOD_STORED) {
                out = g_bytes_new(data, e->compressed);
        } else {
                g_autoptr(GZlibDecompressor) zd =
                        g_zlib_decompressor_new(G_ZLIB_COMPRESSOR_FORMAT_RAW);
                out = itk_sim_zip_convert(G_CONVERTER(zd), data, e->compressed, max_size, error);
                if (out == NULL)
                        return NULL;
        }
        if (g_bytes_get_size(out) != e->size ||
            itk_sim_crc32(0, g_bytes_get_data(out, NULL), g_bytes_get_size(out)) != e->crc) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                            "entry %s is corrupt (size or CRC mismatch)", name);
                return NULL;
        }
        return g_steal_pointer(&out);
}
