// SPDX-License-Identifier: GPL-2.0-only
/*
 * pegpu_dma: the cluster coalescer core, lib/coalesce.c, compiled into the
 * module as it is (the same file the user-space unit tests build).  It is
 * pure C without libc; the kernel's <linux/types.h> provides its fixed-width
 * types (include/pegpu/coalesce.h).  lib/coalesce.c is dual-licensed
 * Apache-2.0 OR GPL-2.0-or-later, used here under the GPL.
 */
#include "../../lib/coalesce.c"
