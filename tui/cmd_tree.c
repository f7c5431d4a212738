/* cmd_tree.c - PLACEHOLDER until the owning issue lands; replaced wholesale. */
#include "cmd.h"

#include <stdio.h>

int cmd_tree(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "imgraph tree: not built yet\n");
	return EXIT_ERR;
}
