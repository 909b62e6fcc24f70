/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <gio/gio.h>

#include "itk-page-agent-resources.h"
#include "itk-step-browser-agent.h"

const char *
itk_step_browser_agent_source(void)
{
        static GBytes *source;

        /* Through the resource itself: a static library would otherwise
         * drop its constructor. Resource data is NUL-terminated. */
        if (source == NULL)
                source = g_resource_lookup_data(itk_page_agent_get_resource(),
                                                "/org/ignition/Toolkit/browser/itk-page-agent.js",
                                                G_RESOURCE_LOOKUP_FLAGS_NONE, NULL);
        return source != NULL ? g_bytes_get_data(source, NULL) : NULL;
}
