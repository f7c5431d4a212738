# libs.mk - the pkg-config modules the layers build against.  Included by
# the Makefile and by fuzz/fuzz.mk, so the fuzz build compiles the library
# with the same packages as the normal one.
PKGS_LIB = yaml-0.1 zlib libdeflate libzstd jansson libxml-2.0
PKGS_TUI = ncursesw
