/* cmd_plan.c - PLACEHOLDER until the owning issue lands; replaced wholesale. */
#include "cmd.h"

#include <stdio.h>

int cmd_plan(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "imgraph plan: not built yet\n");
	return EXIT_ERR;
}
