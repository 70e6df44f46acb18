/* SPDX-License-Identifier: Apache-2.0 */
/* pegpu version: print the version and the DMA protocol version it speaks. */
#include <stdio.h>

#include "cli.h"
#include "pegpu/dma_proto.h"

static int version_run(int argc, char **argv)
{
	(void)argv;
	if (argc > 1) {
		fprintf(stderr, "usage: pegpu version\n");
		return PEGPU_EXIT_USAGE;
	}
	printf("pegpu %s (DMA protocol %d.%d)\n", PEGPU_VERSION, PEGPU_DMA_VERSION_MAJOR,
	       PEGPU_DMA_VERSION_MINOR);
	return PEGPU_EXIT_OK;
}

const struct pegpu_cmd pegpu_cmd_version = {
	.name = "version",
	.summary = "print pegpu's version",
	.run = version_run,
};
