# fuzz/fuzz.mk - libFuzzer harnesses (run from the top level: make fuzz).
#
#   make -f fuzz/fuzz.mk            build every harness
#   make -f fuzz/fuzz.mk FUZZ_BUILD=dir
#
# core/ and formats/ are compiled again with clang and the fuzzer flags into
# $(FUZZ_BUILD)/lib (never mixed with the normal build dirs).

FUZZ_CC ?= clang
FUZZ_BUILD ?= build-fuzz
PKG_CONFIG ?= pkg-config

include scripts/libs.mk
FUZZ_SAN = -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer
# -Werror stays on, as in the main build: a warning here is a warning there.
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -O1 -g \
	-Wall -Wextra -Werror -Wshadow -Wno-missing-field-initializers \
	-DIMGRAPH_FUZZ=1 -I. $(FUZZ_SAN) \
	$(shell $(PKG_CONFIG) --cflags $(PKGS_LIB) 2>/dev/null)
FUZZ_LIBS = $(shell $(PKG_CONFIG) --libs $(PKGS_LIB) 2>/dev/null)

LIB_SRCS := $(sort $(wildcard core/*/*.c formats/*.c formats/*/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(FUZZ_BUILD)/lib/%.o)
FUZZ_LIB := $(FUZZ_BUILD)/libimgraph-fuzz.a

TARGETS := fz_header fz_image fz_foreign fz_foreign_b fz_chain fz_journal \
	fz_users fz_scan

BINS := $(TARGETS:%=$(FUZZ_BUILD)/%)

.PHONY: all list
all: $(BINS)
	@echo "fuzz: built $(TARGETS) in $(FUZZ_BUILD)/"

list:
	@echo $(TARGETS)

# The library: instrumented for coverage, no libFuzzer main.
$(FUZZ_BUILD)/lib/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  FUZZCC  $<"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(FUZZ_LIB): $(LIB_OBJS)
	@rm -f $@ && ar rcs $@ $^

# fz_chain and fz_scan confine every open(2) of the library to their
# scratch dir (fz_confine.h): --wrap=open64,fopen64 send the library's calls
# to the harness.
$(FUZZ_BUILD)/fz_chain $(FUZZ_BUILD)/fz_scan: LDEXTRA = -Wl,--wrap=open64,--wrap=fopen64

$(FUZZ_BUILD)/%: fuzz/%.c fuzz/fz_common.h fuzz/fz_scratch.h fuzz/fz_walk.h \
		fuzz/fz_confine.h $(FUZZ_LIB)
	@mkdir -p $(dir $@)
	@echo "  FUZZLD  $@"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB) \
		$(LDEXTRA) $(FUZZ_LIBS)

-include $(LIB_OBJS:.o=.d)
