/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "itk-error.h"

/* clang-format off */
G_DEFINE_QUARK(itk-error-quark, itk_error)
/* clang-format on */
