# imgraph - hand-written Makefile (tig style).
#   make            build ./imgraph and build/libimgraph.a (core + formats)
#   make check      build and run every test (unit, integration, terminal)
#   make sanitize   the same tests under ASan+UBSan (build-san/)
#   make deps       install missing packages (apt-get as root, else print)
#   make demo       deps + build + open the editor on a generated demo pool
#   make install / uninstall   honour PREFIX and DESTDIR
#   make fuzz / fuzz-run       libFuzzer harnesses (clang)
#   make fuzz-campaign         fuzz each target for CPU_GOAL CPU-seconds
#   make bench      benchmarks against qemu-img (not part of check)
#   V=1 shows full commands.

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
override CFLAGS += -pthread -std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 $(WARN) -MMD -MP

override LDFLAGS += -pthread

ifeq ($(SAN),1)
override CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined
override LDFLAGS += -fsanitize=address,undefined
endif

PKGS_LIB = yaml-0.1 zlib
PKGS_TUI = ncursesw
LIB_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS_LIB) 2>/dev/null)
LIB_LIBS := $(shell $(PKG_CONFIG) --libs $(PKGS_LIB) 2>/dev/null)
TUI_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS_TUI) 2>/dev/null)
TUI_LIBS := $(shell $(PKG_CONFIG) --libs $(PKGS_TUI) 2>/dev/null)
CHECK_CFLAGS := $(shell $(PKG_CONFIG) --cflags check 2>/dev/null)
CHECK_LIBS := $(shell $(PKG_CONFIG) --libs check 2>/dev/null)

ifeq ($(V),1)
Q =
else
Q = @
endif

LIB_SRCS := $(sort $(wildcard core/*.c formats/*.c))
TUI_SRCS := $(sort $(wildcard tui/*.c))
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
TUI_OBJS := $(TUI_SRCS:%.c=$(BUILD)/%.o)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
UNIT_HELPER_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard tests/unit/helpers*.c))
LIB := $(BUILD)/libimgraph.a

ifeq ($(BUILD),build)
BIN := imgraph
else
BIN := $(BUILD)/imgraph
endif

.PHONY: all check unit it tui-test sanitize deps demo install uninstall \
	clean fuzz fuzz-run fuzz-campaign bench lint
all: $(BIN)

$(BUILD)/core/%.o $(BUILD)/formats/%.o: override CFLAGS += $(LIB_CFLAGS)
$(BUILD)/tui/%.o: override CFLAGS += $(TUI_CFLAGS) $(LIB_CFLAGS)
$(BUILD)/tests/%.o: override CFLAGS += $(CHECK_CFLAGS) $(LIB_CFLAGS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) $(CPPFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(BIN): $(TUI_OBJS) $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(TUI_OBJS) $(LIB) $(TUI_LIBS) $(LIB_LIBS)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(UNIT_HELPER_OBJS) $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(UNIT_HELPER_OBJS) $(LIB) $(CHECK_LIBS) $(LIB_LIBS)

# The whole suite: unit tests (Check), integration scripts judged by
# qemu-img, and terminal tests under tmux.  tests/run.sh prints the summary.
check: deps-quiet $(BIN) $(UNIT_BINS)
	$(Q)IMGRAPH=$(abspath $(BIN)) BUILD=$(BUILD) tests/run.sh $(UNIT_BINS)

unit: $(UNIT_BINS)
	$(Q)IMGRAPH=$(abspath $(BIN)) BUILD=$(BUILD) tests/run.sh --only-unit $(UNIT_BINS)

it: $(BIN) $(UNIT_BINS)
	$(Q)IMGRAPH=$(abspath $(BIN)) BUILD=$(BUILD) tests/run.sh --only-it

# LeakSanitizer ignores what ncurses keeps for the life of the process.
sanitize:
	ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 \
	LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp):print_suppressions=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	$(MAKE) BUILD=build-san SAN=1 check

deps:
	$(Q)scripts/deps.sh

deps-quiet:
	$(Q)scripts/deps.sh --quiet

demo: deps $(BIN)
	./$(BIN) --demo

install: $(BIN)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/imgraph
	install -m 0644 docs/imgraph.1 $(DESTDIR)$(MANDIR)/man1/imgraph.1

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/imgraph $(DESTDIR)$(MANDIR)/man1/imgraph.1

fuzz:
	$(Q)$(MAKE) -f fuzz/fuzz.mk

fuzz-run: fuzz
	$(Q)fuzz/run.sh

fuzz-campaign: fuzz
	$(Q)fuzz/campaign.sh

bench: $(BIN)
	$(Q)bench/run.sh

clean:
	rm -rf build build-san build-fuzz imgraph

# Keep objects of test binaries (make would delete them as intermediates).
.SECONDARY:

-include $(LIB_OBJS:.o=.d) $(TUI_OBJS:.o=.d) $(UNIT_BINS:$(BUILD)/tests/%=$(BUILD)/tests/unit/%.d)
