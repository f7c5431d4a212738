/* cmd_map.c - PLACEHOLDER until the owning issue lands; replaced wholesale. */
#include "cmd.h"

#include <stdio.h>

int cmd_map(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "imgraph map: not built yet\n");
	return EXIT_ERR;
}
