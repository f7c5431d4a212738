# imgraph - hand-written Makefile.
#   make            build ./imgraph
#   make check      install what is missing, build, run every test
#   make sanitize   the same tests under ASan+UBSan (build-san/)
#   make lint       the layering rules, checked on the built objects
#   make deps       install missing packages (apt-get as root, else print
#                   the command); apt's output goes to BUILD/deps.log
#   make demo       deps + build + open the editor on a generated demo pool
#   make install / uninstall   honour PREFIX and DESTDIR
#   make fuzz / fuzz-run       libFuzzer harnesses (clang)
#   make fuzz-campaign         fuzz each target for CPU_GOAL CPU-seconds
#   make bench      benchmarks against qemu-img (not part of check)
#   make unit / it  only the unit suites / only the scripts
#   make prop       the long property run: plan OK => commit succeeds over
#                   PROP_N=300 random chains (SEED=N replays; printed)
#   V=1 shows full commands.
#
# Layers, one archive each, so the linker sees the direction:
#   imgraph (tui/cli) -> libimgraph-editor (tui/editor) -> libimgraph-core
#   (core/*) -> libimgraph-formats (formats/, formats/<driver>/) ->
#   libimgraph-io (formats/io).
# `make lint` (scripts/lint.sh) fails when an object references a symbol of
# a layer above it.

PKG_CONFIG ?= pkg-config
CC ?= cc
PREFIX ?= /usr/local
prefix ?= $(PREFIX)
BINDIR ?= $(prefix)/bin
MANDIR ?= $(prefix)/share/man
DESTDIR ?=

BUILD ?= build
CFLAGS ?= -O2 -g
WARN = -Wall -Wextra -Werror -Wshadow -Wno-missing-field-initializers
override CFLAGS += -pthread -std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 $(WARN) -MMD -MP -I.

override LDFLAGS += -pthread

ifeq ($(SAN),1)
override CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined
override LDFLAGS += -fsanitize=address,undefined
# libvirt (core/live loads it at run time) encodes its RPC with libtirpc's
# XDR; ASan intercepts the XDR functions and looks for the real ones once,
# at start-up, so libtirpc must be there already.
override LDFLAGS += -Wl,--push-state,--no-as-needed -ltirpc -Wl,--pop-state
endif

# pkg-config is asked when a rule runs, not when the Makefile is read:
# `make check` installs the packages first and then runs a second make, but
# the flags must never be frozen before the packages exist.  Each is
# computed once per make, on first use (VAR = $(call lazy,VAR,...)); a
# module pkg-config does not know stops the build with a message saying so,
# rather than a compile or link error about missing symbols later.
lazy = $(eval $(1) := $(shell $(PKG_CONFIG) $(2) $(3) 2>/dev/null || \
	echo PKG_CONFIG_FAILED))$(if $(filter PKG_CONFIG_FAILED,$($(1))),$(error \
	$(PKG_CONFIG) $(2) $(3) failed: missing packages; 'make deps' installs \
	them))$($(1))
include scripts/libs.mk
LIB_CFLAGS = $(call lazy,LIB_CFLAGS,--cflags,$(PKGS_LIB))
LIB_LIBS = $(call lazy,LIB_LIBS,--libs,$(PKGS_LIB))
TUI_CFLAGS = $(call lazy,TUI_CFLAGS,--cflags,$(PKGS_TUI))
TUI_LIBS = $(call lazy,TUI_LIBS,--libs,$(PKGS_TUI))
CHECK_CFLAGS = $(call lazy,CHECK_CFLAGS,--cflags,check)
CHECK_LIBS = $(call lazy,CHECK_LIBS,--libs,check)

ifeq ($(V),1)
Q =
else
Q = @
endif

IO_SRCS := $(sort $(wildcard formats/io/*.c))
FMT_SRCS := $(sort $(filter-out $(IO_SRCS),$(wildcard formats/*.c formats/*/*.c)))
CORE_SRCS := $(sort $(wildcard core/*.c core/*/*.c))
EDITOR_SRCS := $(sort $(wildcard tui/editor/*.c))
CLI_SRCS := $(sort $(wildcard tui/cli/*.c))
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
# Test tools the integration scripts run (built here, never installed).
TOOL_SRCS := tests/tools/fmt_tool.c tests/tools/imgcat.c

objs = $(patsubst %.c,$(BUILD)/%.o,$(1))
IO_LIB := $(BUILD)/libimgraph-io.a
FMT_LIB := $(BUILD)/libimgraph-formats.a
CORE_LIB := $(BUILD)/libimgraph-core.a
EDITOR_LIB := $(BUILD)/libimgraph-editor.a
# Link order is the layer order, top first.
LIBS_CORE := $(CORE_LIB) $(FMT_LIB) $(IO_LIB)
LIBS_ALL := $(EDITOR_LIB) $(LIBS_CORE)
CLI_OBJS := $(call objs,$(CLI_SRCS))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
UNIT_HELPER_OBJS := $(call objs,$(wildcard tests/unit/helpers*.c))
TOOL_BINS := $(TOOL_SRCS:tests/tools/%.c=$(BUILD)/tests/tools/%)

ifeq ($(BUILD),build)
BIN := imgraph
else
BIN := $(BUILD)/imgraph
endif

.PHONY: all check check-run unit it prop sanitize deps deps-quiet demo demo-run \
	install uninstall clean fuzz fuzz-run fuzz-campaign bench lint
all: $(BIN)

$(BUILD)/formats/%.o $(BUILD)/core/%.o: override CFLAGS += $(LIB_CFLAGS)
$(BUILD)/tui/%.o: override CFLAGS += $(TUI_CFLAGS) $(LIB_CFLAGS)
$(BUILD)/tests/%.o: override CFLAGS += $(CHECK_CFLAGS) $(TUI_CFLAGS) $(LIB_CFLAGS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) $(CPPFLAGS) -c -o $@ $<

$(BUILD)/%.a:
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(IO_LIB): $(call objs,$(IO_SRCS))
$(FMT_LIB): $(call objs,$(FMT_SRCS))
$(CORE_LIB): $(call objs,$(CORE_SRCS))
$(EDITOR_LIB): $(call objs,$(EDITOR_SRCS))

$(BIN): $(CLI_OBJS) $(LIBS_ALL)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(CLI_OBJS) $(LIBS_ALL) $(TUI_LIBS) $(LIB_LIBS)

# Unit tests link the layer archives (the editor's too: its screens are
# tested through their public functions, never by including a .c file).
$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(UNIT_HELPER_OBJS) $(LIBS_ALL)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(UNIT_HELPER_OBJS) $(LIBS_ALL) \
		$(CHECK_LIBS) $(TUI_LIBS) $(LIB_LIBS)

$(TOOL_BINS): $(BUILD)/tests/tools/%: $(BUILD)/tests/tools/%.o $(LIBS_CORE)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIBS_CORE) $(LIB_LIBS)

# Benchmarks that link the layers (bench/*.c); bench/*.sh run them.
BENCH_BINS := $(BUILD)/bench/editor_bench
$(BUILD)/bench/%.o: override CFLAGS += $(TUI_CFLAGS) $(LIB_CFLAGS)
$(BENCH_BINS): $(BUILD)/bench/%: $(BUILD)/bench/%.o $(LIBS_ALL)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIBS_ALL) $(TUI_LIBS) $(LIB_LIBS)

# The whole suite: unit tests (Check), integration scripts judged by
# qemu-img, and terminal tests under tmux.  deps run first in this make;
# the build and the tests run in a second one, which reads pkg-config
# after the packages are there.
check: deps-quiet
	$(Q)$(MAKE) --no-print-directory check-run

check-run: $(BIN) $(UNIT_BINS) $(TOOL_BINS)
	$(Q)IMGRAPH=$(abspath $(BIN)) BUILD=$(BUILD) tests/run.sh $(UNIT_BINS)

unit: $(UNIT_BINS)
	$(Q)IMGRAPH=$(abspath $(BIN)) BUILD=$(BUILD) tests/run.sh --only-unit $(UNIT_BINS)

it: $(BIN) $(TOOL_BINS)
	$(Q)IMGRAPH=$(abspath $(BIN)) BUILD=$(BUILD) tests/run.sh --only-it

# The long run of the property "plan OK => commit succeeds"
# (tests/it/commit_prop.sh): PROP_N chains (default 300) from SEED (default
# random; the script prints it).  make check runs 16 chains from SEED=1.
PROP_N ?= 300
prop: $(BIN) $(TOOL_BINS)
	$(Q)SEED=$${SEED:-$$(( $$(date +%s) % 1000000 ))} PROP_N=$(PROP_N) \
	IMGRAPH=$(abspath $(BIN)) BUILD=$(BUILD) IT_FILTER='/commit_prop\.sh$$' IT_TIMEOUT=0 \
	tests/run.sh --only-it

# LeakSanitizer ignores what ncurses keeps for the life of the process.
sanitize:
	ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 \
	LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp):print_suppressions=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	$(MAKE) BUILD=build-san SAN=1 check

lint: $(LIBS_ALL) $(CLI_OBJS)
	$(Q)scripts/lint.sh $(BUILD)

deps:
	$(Q)DEPS_LOG=$(BUILD)/deps.log scripts/deps.sh

deps-quiet:
	$(Q)DEPS_LOG=$(BUILD)/deps.log scripts/deps.sh --quiet

demo: deps
	$(Q)$(MAKE) --no-print-directory demo-run

demo-run: $(BIN)
	./$(BIN) --demo

install: $(BIN)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/imgraph
	install -m 0644 docs/imgraph.1 $(DESTDIR)$(MANDIR)/man1/imgraph.1

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/imgraph $(DESTDIR)$(MANDIR)/man1/imgraph.1

fuzz:
	$(Q)$(MAKE) -f fuzz/fuzz.mk

# imgraph itself too: fuzz/seeds.sh makes the journal seeds with it
fuzz-run: fuzz $(BIN)
	$(Q)IMGRAPH=$(abspath $(BIN)) fuzz/run.sh

fuzz-campaign: fuzz $(BIN)
	$(Q)IMGRAPH=$(abspath $(BIN)) fuzz/campaign.sh

bench: $(BIN) $(BENCH_BINS)
	$(Q)IMGRAPH=$(abspath $(BIN)) BUILD=$(BUILD) bench/run.sh

clean:
	rm -rf build build-san build-fuzz build-clang imgraph

# Keep objects of test binaries (make would delete them as intermediates).
.SECONDARY:

ALL_OBJS := $(call objs,$(IO_SRCS) $(FMT_SRCS) $(CORE_SRCS) $(EDITOR_SRCS) \
	$(CLI_SRCS) $(UNIT_SRCS) $(TOOL_SRCS) bench/editor_bench.c)
-include $(ALL_OBJS:.o=.d)
