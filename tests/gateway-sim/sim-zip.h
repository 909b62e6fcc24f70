/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* A minimal ZIP reader and writer for the gateway simulator and its test:
 * .modl modules, project exports and .gwbk backups are all ZIP archives.
 * No ZIP64, no encryption; entries are stored or raw-deflated (through
 * GZlibCompressor/GZlibDecompressor, so no extra dependency). */

typedef struct _ItkSimZipWriter ItkSimZipWriter;
typedef struct _ItkSimZip ItkSimZip;

ItkSimZipWriter *itk_sim_zip_writer_new(void);
void itk_sim_zip_writer_free(ItkSimZipWriter *self);
void itk_sim_zip_writer_add(ItkSimZipWriter *self, const char *name, const void *data, gsize len,
                            gboolean deflate);
/* Appends the central directory; the writer is spent afterwards. */
GBytes *itk_sim_zip_writer_finish(ItkSimZipWriter *self);

/* Parses the central directory and checks that every entry's local header
 * and data lie inside @bytes: a truncated archive fails here. */
ItkSimZip *itk_sim_zip_open(GBytes *bytes, GError **error);
void itk_sim_zip_free(ItkSimZip *self);
guint itk_sim_zip_get_n_entries(ItkSimZip *self);
const char *itk_sim_zip_get_name(ItkSimZip *self, guint index);
gboolean itk_sim_zip_has_entry(ItkSimZip *self, const char *name);
/* Inflates one entry and checks its size and CRC-32; @max_size bounds the
 * uncompressed size (a zip bomb gets an error, not the memory). */
GBytes *itk_sim_zip_extract(ItkSimZip *self, const char *name, gsize max_size, GError **error);

guint32 itk_sim_crc32(guint32 crc, const guint8 *data, gsize len);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ItkSimZipWriter, itk_sim_zip_writer_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ItkSimZip, itk_sim_zip_free)

G_END_DECLS
