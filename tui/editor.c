/* editor.c - PLACEHOLDER until the editor issue lands; replaced wholesale. */
#include "cmd.h"

#include <stdio.h>

int editor_main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "imgraph: the editor is not built yet; see 'imgraph --help'\n");
	return EXIT_USAGE;
}
