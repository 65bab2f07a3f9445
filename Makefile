# empirical: a Lua client for Empirical test runs. `make help` lists the targets.

LUA_VERSION ?= 5.4
LUA         ?= lua$(LUA_VERSION)
PKG_LUA     ?= lua$(LUA_VERSION)
PREFIX      ?= /usr/local
DESTDIR     ?=
CC          ?= cc
BUSTED      ?= /usr/bin/busted

# Read when a recipe runs, after `deps` may have installed the -dev packages.
LUA_CFLAGS   = $(shell pkg-config --cflags $(PKG_LUA) 2>/dev/null)
CURL_CFLAGS  = $(shell pkg-config --cflags libcurl 2>/dev/null)
CURL_LIBS    = $(shell pkg-config --libs libcurl 2>/dev/null)

CFLAGS  ?= -O2 -g
CFLAGS  += -std=c99 -D_POSIX_C_SOURCE=200809L -fPIC -Wall -Wextra -Werror $(LUA_CFLAGS) $(CURL_CFLAGS)
LDFLAGS += -shared
LIBS    += $(CURL_LIBS) -lm

SOURCES := $(wildcard csrc/*.c)
HEADERS := $(wildcard csrc/*.h)
OBJECTS := $(SOURCES:csrc/%.c=build/$(LUA_VERSION)/%.o)
MODULE  := empirical/core.so

# Debian packages every target needs; `make deps` installs the missing ones.
DEB_PACKAGES := lua5.4 liblua5.4-dev libcurl4-openssl-dev lua-cjson lua-busted lua-socket lua-expat pkg-config gcc make luarocks

export LUA_PATH  := ./lua/?.lua;./lua/?/init.lua;;
export LUA_CPATH := ./?.so;;

.PHONY: all deps test demo install clean help check-valgrind

# The module is built by a second make, started after `deps`, so that the
# pkg-config flags are read with the packages in place.
all: deps
	@$(MAKE) --no-print-directory $(MODULE)

help:
	@echo "make          build $(MODULE)"
	@echo "make test     run all specs (busted on Lua $(LUA_VERSION))"
	@echo "make demo     start the bundled fake API and run the release gate (examples/release_gate.lua) against it"
	@echo "make install  PREFIX=$(PREFIX) DESTDIR=  install the module"
	@echo "make deps     install missing Debian packages (as root), or print the command"
	@echo "make check-valgrind  the encode, decode and client specs under valgrind memcheck"

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

$(MODULE): $(OBJECTS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(OBJECTS) $(LIBS)

test: all
	@$(LUA) $(BUSTED) --output=spec/summary.lua spec

# Memcheck over the specs that drive libcurl and cjson: any definite leak or
# invalid access fails the target.
check-valgrind: all
	@command -v valgrind >/dev/null || $(MAKE) deps DEB_PACKAGES=valgrind
	valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=9 \
	  $(LUA) $(BUSTED) -o TAP spec/client_spec.lua spec/decode_spec.lua spec/encode_spec.lua > build/valgrind.tap
	@tail -1 build/valgrind.tap

demo: all
	@$(LUA) examples/demo.lua

install: all
	install -d $(DESTDIR)$(PREFIX)/lib/lua/$(LUA_VERSION)/empirical $(DESTDIR)$(PREFIX)/share/lua/$(LUA_VERSION)/empirical
	install -m 0755 $(MODULE) $(DESTDIR)$(PREFIX)/lib/lua/$(LUA_VERSION)/empirical/core.so
	install -m 0644 lua/empirical/*.lua $(DESTDIR)$(PREFIX)/share/lua/$(LUA_VERSION)/empirical/

clean:
	rm -rf build empirical
