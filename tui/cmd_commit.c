/* cmd_commit.c - PLACEHOLDER until the owning issue lands; replaced wholesale. */
#include "cmd.h"

#include <stdio.h>

int cmd_commit(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "imgraph commit: not built yet\n");
	return EXIT_ERR;
}
