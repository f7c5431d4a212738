/* cmd_create.c - PLACEHOLDER until the owning issue lands; replaced wholesale. */
#include "cmd.h"

#include <stdio.h>

int cmd_create(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "imgraph create: not built yet\n");
	return EXIT_ERR;
}
