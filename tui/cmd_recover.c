/* cmd_recover.c - PLACEHOLDER until the owning issue lands; replaced wholesale. */
#include "cmd.h"

#include <stdio.h>

int cmd_recover(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "imgraph recover: not built yet\n");
	return EXIT_ERR;
}
