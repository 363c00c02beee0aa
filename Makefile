# linq: build, test and demo.  Every variable can be overridden: make LUA=lua5.1 test
LUA ?= lua5.4
PREFIX ?= /usr/local
CC ?= cc
CFLAGS ?= -O2 -g
PKG_CONFIG ?= pkg-config

# lua5.1 .. lua5.4, or luajit.  lua5.1 and luajit share the 5.1 ABI: either build
# loads in both (src/compat.h keeps LuaJIT's extra functions out), so both install
# to lib/lua/5.1.
LUA_ABI := $(if $(filter luajit,$(LUA)),5.1,$(patsubst lua%,%,$(LUA)))
LUA_PC := $(if $(filter luajit,$(LUA)),luajit,lua$(LUA_ABI))
BUILD ?= build/$(LUA)
CORE := $(BUILD)/linq/core.so

WARN := -Wall -Wextra -Werror=implicit-function-declaration
LINQ_CFLAGS = -std=c99 -fPIC -D_GNU_SOURCE $(WARN) \
	$(shell $(PKG_CONFIG) --cflags $(LUA_PC) libcurl) \
	$(shell $(PKG_CONFIG) --cflags libcrypto)
# Never link liblua: the interpreter that loads the module provides the API.
# libcrypto: HMAC-SHA256 and base64 for webhook verification (src/webhook.c).
LINQ_LIBS = $(shell $(PKG_CONFIG) --libs libcurl) -lhttp_parser \
	$(shell $(PKG_CONFIG) --libs libcrypto)

SRC := $(wildcard src/*.c)
HDR := $(wildcard src/*.h)
OBJ := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(SRC))

# What the build, the simulator and the specs need, all from Debian's archive.
DEBIAN_PACKAGES := gcc make pkg-config curl openssl libcurl4-openssl-dev libhttp-parser-dev libssl-dev lua-cjson lua-busted \
	nginx-light libnginx-mod-http-lua luajit2 libluajit2-5.1-dev \
	$(if $(filter luajit,$(LUA)),luajit2 libluajit2-5.1-dev,$(LUA) \
	$(if $(filter lua5.1,$(LUA)),liblua5.1-0-dev,lib$(LUA)-dev))

# Specs find the module in the build folder and never in the working directory.
TEST_ENV = LUA_PATH='./lua/?.lua;./spec/?.lua;;' LUA_CPATH='./$(BUILD)/?.so;;' LINQ_TEST_LUA=$(LUA) \
	NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
BUSTED ?= busted
BUSTED_FLAGS ?= -o utfTerminal

# Every spec under valgrind and under ASan + UBSan, with the collector at full pace
# (spec/gc_stress.lua): builds that are never unloaded (so frames and leaks are
# real); any invalid access, undefined behaviour or definite leak is an error.
VALGRIND_SPECS ?= spec
VALGRIND_BUILD := build/$(LUA)-valgrind
VALGRIND ?= valgrind --quiet --leak-check=full --show-leak-kinds=definite \
	--errors-for-leak-kinds=definite --error-exitcode=99

.PHONY: all help deps test test-all demo install uninstall clean sim-selftest lint valgrind \
	valgrind-run asan asan-run check-memory soak fuzz bench bench-webhooks rockspec-check \
	abi-check release-check docs

all: $(CORE)

$(BUILD)/obj/%.o: src/%.c $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LINQ_CFLAGS) -c $< -o $@

$(CORE): $(OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -shared -o $@ $(OBJ) $(LINQ_LIBS)

help:
	@echo 'make [TARGET] [LUA=lua5.4|lua5.3|lua5.2|lua5.1|luajit] [PREFIX=/usr/local] [DESTDIR=]'
	@echo '  all             build $(CORE) (the default target)'
	@echo '  help            this list'
	@echo '  deps            check what the build and specs need; apt-get install what is missing'
	@echo '  test            every spec under busted against the simulator, with LUA'
	@echo '  test-all        make test under lua5.1, lua5.2, lua5.3, lua5.4 and luajit'
	@echo '  demo            the two examples against the simulator'
	@echo '  install         core.so to DESTDIR/PREFIX/lib/lua/<x.y>, Lua files to .../share/lua/<x.y>'
	@echo '  uninstall       remove what make install installs, same LUA, PREFIX and DESTDIR'
	@echo '  clean           remove build/ and what luarocks make leaves in the tree'
	@echo '  sim-selftest    the simulator'"'"'s own checks, with curl'
	@echo '  lint            luacheck over lua, spec, examples, sim, bench and docs'
	@echo '  valgrind        every spec under valgrind, collector at full pace'
	@echo '  valgrind-run    the valgrind run alone, on a build made by make valgrind'
	@echo '  asan            every spec under ASan + UBSan, collector at full pace'
	@echo '  asan-run        the ASan run alone, on a build made by make asan'
	@echo '  check-memory    valgrind and asan'
	@echo '  soak            SOAK_CALLS calls on one client; fails on growth or a leaked descriptor'
	@echo '  fuzz            the libFuzzer harnesses, FUZZ_SECONDS each'
	@echo '  bench           the benchmark table (bench/README.md)'
	@echo '  bench-webhooks  webhook verifications per second against Node'"'"'s standardwebhooks'
	@echo '  rockspec-check  luarocks make of every rockspec, offline, for all five interpreters'
	@echo '  abi-check       the lua5.1 and luajit builds each load in both interpreters'
	@echo '  release-check   rockspec-check, abi-check, and one version in rockspec, module and CHANGELOG'
	@echo '  docs            docs/api.md and types/ from the operation table'

# What is missing is found by looking for what each package provides (tools/deps),
# so a machine without apt that has everything builds; apt-get runs only when
# something is missing, and needs root (or sudo) then.
APT_GET ?= apt-get
deps:
	@LUA='$(LUA)' PKG_CONFIG='$(PKG_CONFIG)' APT_GET='$(APT_GET)' tools/deps $(DEBIAN_PACKAGES)

# nginx runs LuaJIT: the nginx specs load the LuaJIT build whatever LUA is.
test: deps
	@$(MAKE) -s --no-print-directory all
	@$(MAKE) -s --no-print-directory all LUA=luajit BUILD=build/luajit
	$(TEST_ENV) sim/with-sim $(BUSTED) --lua=$(LUA) $(BUSTED_FLAGS) spec

demo: deps
	@$(MAKE) -s --no-print-directory all
	@echo "Listing phone numbers from the local simulator:"
	@$(TEST_ENV) sim/with-sim sh -c 'export LINQ_API_V3_BASE_URL="$$LINQ_SIM_URL/api/partner" \
	  LINQ_API_V3_API_KEY="$$LINQ_SIM_KEY"; $(LUA) examples/list_phone_numbers.lua && \
	  echo && echo "Creating a chat, sending a message and listing chats:" && \
	  exec $(LUA) examples/send_message.lua'

valgrind: deps
	@command -v valgrind >/dev/null || $(MAKE) deps DEBIAN_PACKAGES=valgrind
	@$(MAKE) -s --no-print-directory all LUA=luajit BUILD=build/luajit
	@$(MAKE) -s --no-print-directory all BUILD=$(VALGRIND_BUILD) CFLAGS="-O1 -g" \
	  LDFLAGS=-Wl,-z,nodelete
	$(MAKE) -s --no-print-directory BUILD=$(VALGRIND_BUILD) valgrind-run

valgrind-run:
	$(TEST_ENV) sim/with-sim $(VALGRIND) $(LUA) $$(command -v $(BUSTED)) $(BUSTED_FLAGS) \
	  --helper=spec/gc_stress.lua $(VALGRIND_SPECS)

ASAN_BUILD := build/$(LUA)-asan
SANITIZE := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
asan: deps
	@$(MAKE) -s --no-print-directory all
	@$(MAKE) -s --no-print-directory all LUA=luajit BUILD=build/luajit
	@$(MAKE) -s --no-print-directory all BUILD=$(ASAN_BUILD) CFLAGS="-O1 -g $(SANITIZE)" \
	  LDFLAGS="$(SANITIZE) -Wl,-z,nodelete"
	$(MAKE) -s --no-print-directory BUILD=$(ASAN_BUILD) asan-run

# The interpreter is not built with ASan: its runtime must be loaded first.
asan-run:
	$(TEST_ENV) LINQ_CHILD_CPATH='./build/$(LUA)/?.so;;' sim/with-sim \
	  env LD_PRELOAD="$$($(CC) -print-file-name=libasan.so)" \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  $(LUA) $$(command -v $(BUSTED)) $(BUSTED_FLAGS) --helper=spec/gc_stress.lua spec

check-memory: valgrind asan

# One benchmark run, one table (bench/README.md); BENCH_SECONDS, BENCH_SKIP_NODE, BENCH_CPU,
# BENCH_SKIP_NGINX, BENCH_NGINX_SECONDS.
bench: deps
	bench/run

# Webhook verifications per second against Node's standardwebhooks (bench/webhooks).
bench-webhooks: deps
	@$(MAKE) -s --no-print-directory all
	@$(MAKE) -s --no-print-directory all LUA=luajit BUILD=build/luajit
	bench/webhooks

# Every rockspec, built offline by luarocks for every interpreter from a scratch copy
# of the working tree (tools/rockspec-check); a 5.1 build is loaded by lua5.1 and
# by luajit, as lib/lua/5.1 serves both.
ROCKSPECS := $(wildcard linq-*.rockspec)
rockspec-check:
	@$(MAKE) -s --no-print-directory deps DEBIAN_PACKAGES="gcc pkg-config luarocks lua5.1 lua5.2 \
	  lua5.3 lua5.4 luajit2 liblua5.1-0-dev liblua5.2-dev liblua5.3-dev liblua5.4-dev \
	  libluajit2-5.1-dev libcurl4-openssl-dev libhttp-parser-dev libssl-dev lua-cjson"
	LUAS="$(ALL_LUAS)" tools/rockspec-check $(ROCKSPECS)
	@$(MAKE) -s --no-print-directory abi-check

# The same for this Makefile's builds: build/luajit (what nginx loads) and
# build/lua5.1 each load under both interpreters.
abi-check:
	@$(MAKE) -s --no-print-directory all LUA=lua5.1 BUILD=build/lua5.1
	@$(MAKE) -s --no-print-directory all LUA=luajit BUILD=build/luajit
	@for b in lua5.1 luajit; do for l in lua5.1 luajit; do \
	  LUA_PATH='./lua/?.lua;;' LUA_CPATH="./build/$$b/?.so;;" \
	    $$l -e 'assert(require("linq").new{ api_key = "k" })' || exit 1; \
	  done; echo "abi: build/$$b/linq/core.so loads under lua5.1 and luajit"; done

# Before tagging v<version>: the rockspecs and the ABI as above, and the version
# agreeing between the versioned rockspec, linq._VERSION and CHANGELOG.md.
release-check: rockspec-check
	@LUA_PATH='./lua/?.lua;;' LUA_CPATH='./build/luajit/?.so;;' tools/version-check

# libFuzzer harnesses (fuzz/README.md): each runs FUZZ_SECONDS; needs clang from Debian.
FUZZ_SECONDS ?= 60
FUZZ_PACKAGES := clang libclang-rt-14-dev pkg-config libcurl4-openssl-dev libhttp-parser-dev \
	liblua5.4-dev lua-cjson libssl-dev

fuzz:
	@$(MAKE) -s --no-print-directory deps DEBIAN_PACKAGES="$(FUZZ_PACKAGES)"
	FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run

# SOAK_CALLS calls on one client, every error kind mixed in; fails if RSS grows by
# more than 1 MiB after the warm-up or a descriptor is left behind.
SOAK_CALLS ?= 100000
soak: deps
	@$(MAKE) -s --no-print-directory all
	$(TEST_ENV) sim/with-sim $(LUA) bench/soak.lua $(SOAK_CALLS)

LUA_DIR = $(DESTDIR)$(PREFIX)/share/lua/$(LUA_ABI)
LIB_DIR = $(DESTDIR)$(PREFIX)/lib/lua/$(LUA_ABI)

LUA_MODULES = $(wildcard lua/linq/*.lua)

# DESTDIR is prepended to every installed path (staging for a package); PREFIX is
# where the files will finally live.
install: $(CORE)
	install -d $(LIB_DIR)/linq $(LUA_DIR)/linq
	install -m 755 $(CORE) $(LIB_DIR)/linq/core.so
	install -m 644 lua/linq.lua $(LUA_DIR)/linq.lua
	install -m 644 $(LUA_MODULES) $(LUA_DIR)/linq/

# The linq folders go only when empty: anything else in them is not ours.
uninstall:
	rm -f $(LIB_DIR)/linq/core.so $(LUA_DIR)/linq.lua \
	  $(addprefix $(LUA_DIR)/linq/,$(notdir $(LUA_MODULES)))
	@rmdir $(LIB_DIR)/linq $(LUA_DIR)/linq 2>/dev/null || true

# Every interpreter in turn; each build lives in build/<interpreter>.
ALL_LUAS := lua5.1 lua5.2 lua5.3 lua5.4 luajit
test-all:
	@set -e; for l in $(ALL_LUAS); do echo "=== $$l"; $(MAKE) -s --no-print-directory test LUA=$$l; done

sim-selftest:
	sim/selftest

# The API reference, from the operation table (spec/docs_spec.lua checks it is current).
docs: all
	LUA_PATH='./lua/?.lua;;' LUA_CPATH='./$(BUILD)/?.so;;' $(LUA) docs/generate.lua > docs/api.md
	LUA_PATH='./lua/?.lua;;' LUA_CPATH='./$(BUILD)/?.so;;' $(LUA) docs/types.lua > types/linq.lua
	LUA_PATH='./lua/?.lua;;' LUA_CPATH='./$(BUILD)/?.so;;' $(LUA) docs/types.lua safe > types/linq/safe.lua

lint:
	@command -v luacheck >/dev/null || $(MAKE) -s --no-print-directory deps DEBIAN_PACKAGES=lua-check
	luacheck --no-color lua spec examples sim bench docs

# `luarocks make` builds in place: its objects and linq/core.so go too.
clean:
	rm -rf build linq src/*.o
