# empirical: a Lua client for Empirical test runs. `make help` lists the targets.

# LUA_VERSION: 5.4 (default), 5.3, 5.1 or jit (OpenResty's LuaJIT 2.1,
# Debian's luajit2). Each builds into its own directory; 5.4's module is also
# the one the examples and the tools (the fake, the gate) load.
LUA_VERSION ?= 5.4
ifeq ($(LUA_VERSION),jit)
LUA         ?= luajit
PKG_LUA     ?= luajit
LUA_DEBS    := luajit2 libluajit2-5.1-dev
LUA_ABI     := 5.1
else
LUA         ?= lua$(LUA_VERSION)
PKG_LUA     ?= lua$(LUA_VERSION)
LUA_ABI     := $(LUA_VERSION)
LUA_DEBS    := lua$(LUA_VERSION) $(if $(filter 5.1,$(LUA_VERSION)),liblua5.1-0-dev,liblua$(LUA_VERSION)-dev)
endif
PREFIX      ?= /usr/local
DESTDIR     ?=
CC          ?= cc
BUSTED      ?= /usr/bin/busted

# Read when a recipe runs, after `deps` may have installed the -dev packages.
LUA_CFLAGS   = $(shell pkg-config --cflags $(PKG_LUA) 2>/dev/null)
LUA_LIBS     = $(shell pkg-config --libs $(PKG_LUA) 2>/dev/null)
CURL_CFLAGS  = $(shell pkg-config --cflags libcurl 2>/dev/null)
CURL_LIBS    = $(shell pkg-config --libs libcurl 2>/dev/null)

CFLAGS  ?= -O2 -g
CFLAGS  += -std=c99 -D_POSIX_C_SOURCE=200809L -fPIC -Wall -Wextra -Werror $(LUA_CFLAGS) $(CURL_CFLAGS)
LDFLAGS += -shared
LIBS    += $(CURL_LIBS) -lm

SOURCES := $(wildcard csrc/*.c)
HEADERS := $(wildcard csrc/*.h)
OBJECTS := $(SOURCES:csrc/%.c=build/$(LUA_VERSION)/%.o)
ifeq ($(LUA_VERSION),5.4)
MODULE_DIR := .
else
MODULE_DIR := build/$(LUA_VERSION)
endif
MODULE  := $(MODULE_DIR)/empirical/core.so

# Debian packages: `make deps` installs the missing ones of DEB_PACKAGES,
# which is what building the module needs; the targets that need more pass
# their own list. The fake API (make demo, the specs) runs on Lua 5.4 with
# luasocket, lua-sec for https. The specs also start Neovim and nginx with
# lua-nginx-module, both on OpenResty's LuaJIT (luajit2: Debian's plain
# luajit conflicts with libnginx-mod-http-lua), and spec/conformance_spec.lua's
# mock on Debian's python3.
MODULE_DEBS := $(sort $(LUA_DEBS) lua5.4 liblua5.4-dev libcurl4-openssl-dev lua-cjson pkg-config gcc make)
FAKE_DEBS   := lua-socket lua-sec
TEST_DEBS   := $(sort $(MODULE_DEBS) $(FAKE_DEBS) lua-busted lua-expat openssl luarocks \
                 luajit2 libluajit2-5.1-dev neovim nginx-light libnginx-mod-http-lua \
                 python3-yaml python3-jsonschema)
DEB_PACKAGES := $(MODULE_DEBS)

export LUA_PATH  := ./lua/?.lua;./lua/?/init.lua;;
export LUA_CPATH := ./$(MODULE_DIR)/?.so;;

# On 5.4 every spec runs. On the other Luas, the specs of the module itself;
# the gate, install and deps specs are about 5.4 tools and run there.
PORTABLE_SPECS := $(addprefix spec/,encode_spec.lua decode_spec.lua client_spec.lua wait_spec.lua api_spec.lua \
                    download_spec.lua signals_spec.lua \
                    report_spec.lua faults_spec.lua load_spec.lua security_spec.lua fake_spec.lua \
                    playwright_spec.lua poll_spec.lua)
SPECS := $(if $(filter 5.4,$(LUA_VERSION)),spec,$(PORTABLE_SPECS))
LUA_VERSIONS := 5.1 5.3 jit 5.4

.PHONY: all module nvim spec-modules deps test-deps lint bench test test-all demo install install-fake clean help check-valgrind check-asan fuzz

# The module is built by a second make, started after `deps`, so that the
# pkg-config flags are read with the packages in place.
all: deps
	@$(MAKE) --no-print-directory $(MODULE)

help:
	@echo "make          build $(MODULE)"
	@echo "make nvim     build lua/empirical/core.so for Neovim's LuaJIT: the repository is then the Neovim plugin"
	@echo "make test     run all specs (busted on Lua $(LUA_VERSION); LUA_VERSION=5.1|5.3|5.4|jit)"
	@echo "make test-all the specs on every supported Lua: $(LUA_VERSIONS)"
	@echo "make lint     luacheck over lua/, examples/ and spec/ (.luacheckrc)"
	@echo "make bench    the benchmark of bench/README.md against a local nginx-light (BENCH_FLAGS=--quick)"
	@echo "make demo     install the empirical command under build/demo and run its gate against the bundled fake API"
	@echo "make install  PREFIX=$(PREFIX) DESTDIR=  install the module and the empirical command"
	@echo "make install-fake  PREFIX=$(PREFIX) DESTDIR=  install the fake API (empirical.fake; needs lua-socket)"
	@echo "make deps     install the Debian packages the module needs (as root), or print the command"
	@echo "make check-valgrind  the specs that drive the core ($(VALGRIND_SPECS)) under valgrind memcheck"
	@echo "make check-asan      every spec against a build with -fsanitize=address,undefined"
	@echo "make fuzz     libFuzzer with ASan and UBSan on encode, decode, parse_report and the client's callbacks, FUZZ_SECONDS=$(FUZZ_SECONDS) each"

# Installs what is missing when run as root with apt; otherwise prints the
# one command to run, and stops.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing:$$missing"; \
	    (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing Debian packages; run:"; echo "  sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

build/$(LUA_VERSION)/%.o: csrc/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

module: $(MODULE)

$(MODULE): $(OBJECTS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(OBJECTS) $(LIBS)

# The Neovim plugin's module: the LuaJIT build, where Neovim's loader looks
# for it (lua/empirical/core.so on 'runtimepath'). Plugin managers run this
# on any system, so the Debian check runs only where dpkg exists. The copy is
# renamed into place: a running Neovim keeps the file it loaded.
NVIM_DEBS := libluajit2-5.1-dev libcurl4-openssl-dev lua-cjson pkg-config gcc make
nvim:
	@if command -v dpkg-query >/dev/null; then $(MAKE) --no-print-directory deps DEB_PACKAGES="$(NVIM_DEBS)"; fi
	@$(MAKE) --no-print-directory LUA_VERSION=jit module
	cp build/jit/empirical/core.so lua/empirical/core.tmp.so && mv -f lua/empirical/core.tmp.so lua/empirical/core.so

# What the specs need, installed in one go (one apt-get line when not root).
test-deps:
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(TEST_DEBS)"

# On 5.4 the OpenResty spec loads the LuaJIT build too (the Neovim spec
# builds a fresh copy of the repository with `make nvim`); on the other Luas
# the fake the specs start runs on 5.4 and loads the 5.4 build.
spec-modules: test-deps all
	@if [ "$(LUA_VERSION)" = 5.4 ]; then $(MAKE) --no-print-directory LUA_VERSION=jit module; \
	else $(MAKE) --no-print-directory LUA_VERSION=5.4 module; fi

test: spec-modules
	@$(LUA) $(BUSTED) --cpath="./$(MODULE_DIR)/?.so" --output=spec/summary.lua $(SPECS)

lint:
	@command -v luacheck >/dev/null || $(MAKE) deps DEB_PACKAGES=lua-check
	luacheck --no-color --quiet .

# Every supported Lua, 5.4 last.
test-all:
	@for v in $(LUA_VERSIONS); do echo "== Lua $$v"; $(MAKE) --no-print-directory test LUA_VERSION=$$v || exit 1; done

# Memcheck over the specs that drive libcurl and cjson, the fault matrix
# included: any definite leak or invalid access fails the target.
VALGRIND_SPECS := spec/client_spec.lua spec/decode_spec.lua spec/encode_spec.lua spec/faults_spec.lua spec/wait_spec.lua \
                  spec/concurrency_spec.lua spec/api_spec.lua spec/download_spec.lua spec/signals_spec.lua
check-valgrind: test-deps all
	@command -v valgrind >/dev/null || $(MAKE) deps DEB_PACKAGES=valgrind
	valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=9 \
	  $(LUA) $(BUSTED) -o TAP $(VALGRIND_SPECS) > build/valgrind.tap
	@tail -1 build/valgrind.tap

# The whole suite against a sanitizer build of the module. The interpreter
# is not instrumented, so the runtime is preloaded; leaks are valgrind's job
# (LeakSanitizer would count the interpreter's own exit-time allocations).
# float-cast-overflow (a double too large for the integer it is converted
# to) is not in gcc's "undefined" group: asked for by name where the
# compiler knows it (gcc and clang 14 do).
FLOAT_CAST = $(shell $(1) -fsanitize=float-cast-overflow -x c -c /dev/null -o /dev/null 2>/dev/null && \
               echo -fsanitize=float-cast-overflow -fno-sanitize-recover=float-cast-overflow)
ASAN_DIR   := build/asan
ASAN_FLAGS  = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined $(call FLOAT_CAST,$(CC))
check-asan: spec-modules
	@mkdir -p $(ASAN_DIR)/empirical
	$(CC) $(ASAN_FLAGS) -std=c99 -D_POSIX_C_SOURCE=200809L -fPIC -shared -Wall -Wextra -Werror $(LUA_CFLAGS) $(CURL_CFLAGS) \
	  -o $(ASAN_DIR)/empirical/core.so $(SOURCES) $(CURL_LIBS) -lm
	LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 EMPIRICAL_SANITIZER=asan \
	LUA_CPATH="./$(ASAN_DIR)/?.so;;" $(LUA) $(BUSTED) --cpath="./$(ASAN_DIR)/?.so" --output=spec/summary.lua spec

# libFuzzer harnesses (spec/fuzz/) over encode, decode, parse_report and the
# client's callbacks, with ASan and UBSan. New inputs go to build/fuzz; the
# seeds in spec/fuzz/corpus. Run from the repository root (the oracles are
# read from spec/fuzz/, the Lua layer from lua/). An input that runs 30 s
# is a hang (a normal one takes well under a second).
FUZZ_SECONDS ?= 600
FUZZ_FLAGS    = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined $(call FLOAT_CAST,clang)
FUZZERS      := decode encode report callbacks
build/fuzz/fuzz_%: spec/fuzz/fuzz_%.c spec/fuzz/fuzz_common.h $(SOURCES) $(HEADERS)
	@mkdir -p $(dir $@)
	clang $(FUZZ_FLAGS) $(LUA_CFLAGS) $(CURL_CFLAGS) -Icsrc -pthread -o $@ $< $(SOURCES) $(LUA_LIBS) $(CURL_LIBS) -lm

fuzz: all
	@command -v clang >/dev/null || $(MAKE) deps DEB_PACKAGES=clang
	@$(MAKE) --no-print-directory $(FUZZERS:%=build/fuzz/fuzz_%)
	@for f in $(FUZZERS); do \
	  mkdir -p build/fuzz/corpus-$$f; \
	  echo "fuzz_$$f for $(FUZZ_SECONDS) s"; \
	  build/fuzz/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=30 -print_final_stats=1 \
	    build/fuzz/corpus-$$f spec/fuzz/corpus/$$f 2> build/fuzz/fuzz_$$f.log \
	    || { tail -40 build/fuzz/fuzz_$$f.log; exit 1; }; \
	  grep -E "stat::number_of_executed_units|Done" build/fuzz/fuzz_$$f.log; \
	done

# The benchmark: the raw C floor and the fair floor (a Lua module on one
# reused easy handle) built here, nginx-light with the echo module, hyperfine.
build/bench/floor: bench/floor.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -o $@ $< $(CURL_CFLAGS) $(CURL_LIBS)

build/bench/floor_lua.so: bench/floor_lua.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -fPIC -shared -Wall -Wextra -Werror $(LUA_CFLAGS) $(CURL_CFLAGS) -o $@ $< $(CURL_LIBS)

bench: test-deps all
	@for p in valgrind:valgrind hyperfine:hyperfine; do command -v $${p%%:*} >/dev/null || $(MAKE) deps DEB_PACKAGES=$${p#*:}; done
	@dpkg-query -W -f='$${Status}\n' libnginx-mod-http-echo 2>/dev/null | grep -q '^install ok installed' || \
	  $(MAKE) deps DEB_PACKAGES=libnginx-mod-http-echo
	@$(MAKE) --no-print-directory build/bench/floor build/bench/floor_lua.so
	$(LUA) bench/run.lua $(BENCH_FLAGS)

# The installed command, in a prefix under build/, against the bundled fake.
demo:
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(sort $(MODULE_DEBS) $(FAKE_DEBS))"
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory -s install install-fake PREFIX=$(CURDIR)/build/demo DESTDIR= >/dev/null
	@$(LUA) examples/demo.lua build/demo/bin/empirical

# The command runs on the Lua it was built for, and finds the modules under
# PREFIX first: its first line is rewritten, and the paths set after it.
LUA_SHARE := $(PREFIX)/share/lua/$(LUA_ABI)
LUA_LIB   := $(PREFIX)/lib/lua/$(LUA_ABI)
install: all
	install -d $(DESTDIR)$(LUA_LIB)/empirical $(DESTDIR)$(LUA_SHARE)/empirical/cli $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(MODULE) $(DESTDIR)$(LUA_LIB)/empirical/core.so
	install -m 0644 lua/empirical/*.lua $(DESTDIR)$(LUA_SHARE)/empirical/
	install -m 0644 lua/empirical/cli/*.lua $(DESTDIR)$(LUA_SHARE)/empirical/cli/
	sed -e '1s|.*|#!$(shell command -v $(LUA))|' \
	    -e '1a package.path = "$(LUA_SHARE)/?.lua;$(LUA_SHARE)/?/init.lua;" .. package.path' \
	    -e '1a package.cpath = "$(LUA_LIB)/?.so;" .. package.cpath' \
	    bin/empirical > $(DESTDIR)$(PREFIX)/bin/empirical
	chmod 0755 $(DESTDIR)$(PREFIX)/bin/empirical

# The fake API on its own, as the empirical-fake rock installs it.
install-fake:
	install -d $(DESTDIR)$(PREFIX)/share/lua/$(LUA_ABI)/empirical/fake
	install -m 0644 lua/empirical/fake/*.lua $(DESTDIR)$(PREFIX)/share/lua/$(LUA_ABI)/empirical/fake/

clean:
	rm -rf build empirical/core.so lua/empirical/core.so doc/tags
