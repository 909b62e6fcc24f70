/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "itk-error.h"

G_DEFINE_QUARK(itk-error-quark, itk_error)
