/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <sqlite3.h>

#include "itk-store.h"

G_BEGIN_DECLS

/* What itk-store-history.c needs of the store's insides. */
sqlite3 *itk_store_get_db(ItkStore *store);
const char *itk_store_get_path(ItkStore *store);
/* TRUE while a caller's transaction is open: no other work may start one. */
gboolean itk_store_in_transaction(ItkStore *store);
/* The column list the row below reads, in its order. */
const char *itk_store_execution_columns(void);
/* One row of itk_store_execution_columns() as a floating a{sv}. */
GVariant *itk_store_execution_row(sqlite3_stmt *stmt);

G_END_DECLS
