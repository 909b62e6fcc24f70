/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define ITK_ERROR (itk_error_quark())

/* Engine errors. The sd-bus glue maps each code to one D-Bus error name
 * (itk-bus.c, itk_bus_error_from_gerror); nothing else converts. */
typedef enum {
        ITK_ERROR_FAILED,        /* generic step or engine failure */
        ITK_ERROR_INVALID_STATE, /* method not allowed in this status */
        ITK_ERROR_NOT_RUNNING,   /* execution already terminal */
        ITK_ERROR_NO_SUCH_PLAYBOOK,
        ITK_ERROR_INVALID_PLAYBOOK,   /* load/validation failure */
        ITK_ERROR_INVALID_PARAMETERS, /* parameter type/required checks */
        ITK_ERROR_NO_SUCH_CREDENTIAL,
        ITK_ERROR_NO_SUCH_EXECUTION,
        ITK_ERROR_INVALID_ARGS, /* malformed method arguments */
        ITK_ERROR_ACCESS_DENIED,
        ITK_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
        ITK_ERROR_LIMITS_EXCEEDED,
        ITK_ERROR_NOT_SUPPORTED, /* step type of later work, unsupported call */
        ITK_ERROR_TIMED_OUT,     /* step attempt exceeded its timeout */
        ITK_ERROR_REFERENCE,     /* {{ }} reference could not be resolved */
        ITK_ERROR_STORE_FAILED,  /* the history store cannot write: no run starts */
        /* no such file among a run's artifacts */
        ITK_ERROR_NO_SUCH_ARTIFACT,
        /* no such file in the admin's input folders */
        ITK_ERROR_NO_SUCH_INPUT_FILE,
} ItkError;

GQuark itk_error_quark(void);

G_END_DECLS
