# linq: build, test and demo.  Every variable can be overridden: make LUA=lua5.1 test
LUA ?= lua5.4
PREFIX ?= /usr/local
CC ?= cc
CFLAGS ?= -O2 -g
PKG_CONFIG ?= pkg-config

# lua5.1 .. lua5.4, or luajit (which loads Lua 5.1 modules).
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

.PHONY: all deps test test-all demo install clean sim-selftest lint valgrind valgrind-run \
	asan asan-run check-memory soak fuzz bench bench-webhooks rockspec-check docs

all: $(CORE)

$(BUILD)/obj/%.o: src/%.c $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LINQ_CFLAGS) -c $< -o $@

$(CORE): $(OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -shared -o $@ $(OBJ) $(LINQ_LIBS)

# Installs only what is missing; needs root (or sudo) the first time.
deps:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing from Debian: $$missing"; \
	  sudo=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	fi

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

# The rockspec, built offline by luarocks for every interpreter, each in a scratch
# copy (luarocks make builds in place) and loaded by its interpreter.
rockspec-check:
	@$(MAKE) -s --no-print-directory deps DEBIAN_PACKAGES="luarocks lua5.1 lua5.2 lua5.3 lua5.4 \
	  luajit2 liblua5.1-0-dev liblua5.2-dev liblua5.3-dev liblua5.4-dev libluajit2-5.1-dev \
	  libhttp-parser-dev libssl-dev"
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	for l in $(ALL_LUAS); do \
	  v=$$(echo $$l | sed 's/^luajit$$/5.1/; s/^lua//'); \
	  inc=$$( [ $$l = luajit ] && echo LUA_INCDIR=/usr/include/luajit-2.1 || true ); \
	  rm -rf "$$tmp/src" "$$tmp/tree"; mkdir -p "$$tmp/src"; \
	  git archive HEAD | tar -x -C "$$tmp/src"; \
	  (cd "$$tmp/src" && luarocks --lua-version=$$v --tree="$$tmp/tree" make --deps-mode=none \
	    linq-scm-1.rockspec CURL_INCDIR=/usr/include/x86_64-linux-gnu $$inc >/dev/null); \
	  LUA_PATH="$$tmp/tree/share/lua/$$v/?.lua;;" LUA_CPATH="$$tmp/tree/lib/lua/$$v/?.so;;" \
	    $$l -e 'local linq = require("linq"); assert(linq.new{ api_key = "k" })' ; \
	  echo "rockspec: built and loaded under $$l"; \
	done

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

install: $(CORE)
	install -d $(LIB_DIR)/linq $(LUA_DIR)/linq
	install -m 755 $(CORE) $(LIB_DIR)/linq/core.so
	install -m 644 lua/linq.lua $(LUA_DIR)/linq.lua
	install -m 644 lua/linq/nginx.lua lua/linq/cosocket.lua lua/linq/paging.lua \
	  lua/linq/upload.lua lua/linq/replay.lua $(LUA_DIR)/linq/

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

lint:
	@command -v luacheck >/dev/null || $(MAKE) -s --no-print-directory deps DEBIAN_PACKAGES=lua-check
	luacheck --no-color lua spec examples sim bench docs

# `luarocks make` builds in place: its objects and linq/core.so go too.
clean:
	rm -rf build linq src/*.o
