# postern: build, test, install.
#
#   make            programs in build/
#   make check      unit tests (cmocka) and integration tests (pytest), all
#                   built with AddressSanitizer and UBSan in test/build/
#   make demo       a sandboxed posternd and test smarthost, one message
#   make bench      throughput, latency and memory against local sinks
#   make install    PREFIX=/usr/local DESTDIR=   (programs, man pages,
#                   systemd unit, example main.cf, postern user, spool)
#   make install-init INIT=sysv|openrc   an init script in /etc/init.d
#   make uninstall  the same paths; keeps the config, spool and user
#
# Each program links only what it needs: sendmail links libc and libbsd;
# posternd and postern add OpenSSL, libgsasl, GDBM and libresolv.

PREFIX	?= /usr/local
SBINDIR	?= $(PREFIX)/sbin
BINDIR	?= $(PREFIX)/bin
MANDIR	?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc/postern
SPOOLDIR ?= /var/spool/postern
UNITDIR	?= $(PREFIX)/lib/systemd/system
INITDIR	?= /etc/init.d
INIT	?= sysv
DESTDIR	?=

CC	?= cc
CSTD	= -std=c11 -D_GNU_SOURCE
WARN	= -Wall -Wextra -Wshadow -Wformat=2 -Wno-unused-parameter
CFLAGS	?= -O2 -g
ALL_CFLAGS = $(CSTD) $(WARN) $(CFLAGS) -Isrc \
	-DPOSTERN_SYSCONFDIR='"$(SYSCONFDIR)"' -DPOSTERN_SPOOLDIR='"$(SPOOLDIR)"'

# Library modules: everything under src/ except the thin mains in src/cmd.
LIB_SRC	= $(sort $(wildcard src/lib/*.c src/conf/*.c src/spool/*.c \
	src/mail/*.c src/deliver/*.c src/admin/*.c))
CMD_SRC	= src/cmd/sendmail.c src/cmd/posternd.c src/cmd/postern.c

SENDMAIL_LIBS = -lbsd
# GDBM: hash: and btree: tables; libresolv: MX lookups (part of libc6).
DAEMON_LIBS = -lgsasl -lssl -lcrypto -lgdbm -lresolv -lbsd
ADMIN_LIBS = -lgsasl -lssl -lcrypto -lgdbm -lresolv -lbsd

# ---- release build --------------------------------------------------------
B	= build
LIB_OBJ	= $(LIB_SRC:src/%.c=$(B)/%.o)

PROGS	= $(B)/sendmail $(B)/posternd $(B)/postern

all: $(PROGS)

$(B)/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(B)/libpostern.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(B)/sendmail: $(B)/cmd/sendmail.o $(B)/libpostern.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(SENDMAIL_LIBS)
$(B)/posternd: $(B)/cmd/posternd.o $(B)/libpostern.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(DAEMON_LIBS)
$(B)/postern: $(B)/cmd/postern.o $(B)/libpostern.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(ADMIN_LIBS)

# ---- sanitizer build for the tests (kept under test/ so tools that look
# for the release programs never pick these up) ------------------------------
T	= test/build
SAN	= -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
T_CFLAGS = $(CSTD) $(WARN) -O1 -g $(SAN) -Isrc \
	-DPOSTERN_SYSCONFDIR='"$(SYSCONFDIR)"' -DPOSTERN_SPOOLDIR='"$(SPOOLDIR)"'
T_LIB_OBJ = $(LIB_SRC:src/%.c=$(T)/%.o)
T_PROGS	= $(T)/sendmail $(T)/posternd $(T)/postern

UNIT_SRC = $(sort $(wildcard test/unit/test_*.c))
UNIT_BIN = $(UNIT_SRC:test/unit/%.c=$(T)/unit/%)

$(T)/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(T_CFLAGS) -MMD -MP -c -o $@ $<

$(T)/libpostern.a: $(T_LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(T)/sendmail: $(T)/cmd/sendmail.o $(T)/libpostern.a
	$(CC) $(SAN) -o $@ $^ $(SENDMAIL_LIBS)
$(T)/posternd: $(T)/cmd/posternd.o $(T)/libpostern.a
	$(CC) $(SAN) -o $@ $^ $(DAEMON_LIBS)
$(T)/postern: $(T)/cmd/postern.o $(T)/libpostern.a
	$(CC) $(SAN) -o $@ $^ $(ADMIN_LIBS)

$(T)/unit/%: test/unit/%.c $(T)/libpostern.a
	@mkdir -p $(dir $@)
	$(CC) $(T_CFLAGS) -Itest/unit -o $@ $< $(T)/libpostern.a -lcmocka \
		$(ADMIN_LIBS)

# ---- fuzzing (libFuzzer; `make fuzz FUZZ_SECS=600` for a long run) --------
FUZZ_SRC = $(sort $(wildcard test/fuzz/fuzz_*.c))
FUZZ_BIN = $(FUZZ_SRC:test/fuzz/%.c=$(T)/fuzz/%)
FUZZ_SECS ?= 60
FUZZ_CC	= clang

# The library is compiled once with coverage instrumentation
# (fuzzer-no-link) and each target links against it.
FZ	= $(T)/fuzzobj
FUZZ_CFLAGS = $(CSTD) -g -O1 -Isrc \
	-DPOSTERN_SYSCONFDIR='"$(SYSCONFDIR)"' -DPOSTERN_SPOOLDIR='"$(SPOOLDIR)"'
FUZZ_OBJ = $(LIB_SRC:src/%.c=$(FZ)/%.o)

$(FZ)/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined \
		-MMD -MP -c -o $@ $<

$(FZ)/libpostern.a: $(FUZZ_OBJ)
	rm -f $@ && ar rcs $@ $^

$(T)/fuzz/%: test/fuzz/%.c $(FZ)/libpostern.a
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined \
		-o $@ $< $(FZ)/libpostern.a $(ADMIN_LIBS)

fuzz: $(FUZZ_BIN)
	@set -e; for f in $(FUZZ_BIN); do n=$$(basename $$f); \
		mkdir -p $(T)/corpus/$$n; echo "== $$n ($(FUZZ_SECS) s)"; \
		$$f -max_total_time=$(FUZZ_SECS) -print_final_stats=0 \
			$(T)/corpus/$$n >$(T)/corpus/$$n.log 2>&1 || \
			{ tail -n 40 $(T)/corpus/$$n.log; exit 1; }; done

# ---- checks ---------------------------------------------------------------
PYTHON	= /usr/bin/python3
PYTEST_ARGS ?=

deps:
	@scripts/install-deps

# The demo needs the build and the test smarthost, not the test tools.
deps-demo:
	@scripts/install-deps demo

check: deps
	$(MAKE) all
	$(MAKE) check-build
	$(MAKE) unit
	$(MAKE) fuzz FUZZ_SECS=5
	$(MAKE) integ

check-build: $(T_PROGS) $(UNIT_BIN)

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; \
		ASAN_OPTIONS=detect_leaks=1 $$t; done

# logwatch's package depends on an MTA: it is unpacked, never installed.
integ: $(T_PROGS)
	LOGWATCH_ROOT="$$(scripts/unpack-deb logwatch $(CURDIR)/$(T)/deps)" \
	POSTERN_BIN=$(CURDIR)/$(T) $(PYTHON) -m pytest -q -p no:cacheprovider \
		test/integ $(PYTEST_ARGS)

demo: deps-demo all
	$(PYTHON) scripts/demo.py $(CURDIR)/$(B)

# `make bench`: release programs against local sinks (scripts/bench.py).
# Needs no Postfix installed: scripts/bench-deps unpacks its smtp-sink.
$(B)/bench/benchsink: test/bench/benchsink.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) -O2 -o $@ $< -lssl -lcrypto

bench: deps all $(B)/bench/benchsink
	$(PYTHON) scripts/bench.py $(CURDIR)/$(B) $(CURDIR)/$(B)/bench/benchsink \
		"$$(scripts/bench-deps $(CURDIR)/$(B)/bench)"

# ---- install --------------------------------------------------------------
install: all
	scripts/install.sh "$(DESTDIR)" "$(SBINDIR)" "$(BINDIR)" "$(MANDIR)" \
		"$(SYSCONFDIR)" "$(SPOOLDIR)" "$(UNITDIR)"

# For routers and NAS systems without systemd: INIT=sysv or INIT=openrc.
install-init:
	@case "$(INIT)" in sysv) src=etc/postern.init.in ;; \
		openrc) src=etc/postern.openrc.in ;; \
		*) echo "make install-init: INIT must be sysv or openrc" >&2; \
		   exit 64 ;; esac; \
	install -d "$(DESTDIR)$(INITDIR)" && \
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SPOOLDIR@|$(SPOOLDIR)|g' \
		$$src >"$(DESTDIR)$(INITDIR)/postern.tmp" && \
	chmod 0755 "$(DESTDIR)$(INITDIR)/postern.tmp" && \
	mv -f "$(DESTDIR)$(INITDIR)/postern.tmp" "$(DESTDIR)$(INITDIR)/postern" && \
	echo "installed $(DESTDIR)$(INITDIR)/postern ($(INIT))"

uninstall:
	scripts/uninstall.sh "$(DESTDIR)" "$(SBINDIR)" "$(BINDIR)" "$(MANDIR)" \
		"$(UNITDIR)"

clean:
	rm -rf $(B) $(T)

.PHONY: all deps deps-demo check check-build unit integ fuzz demo bench install \
	install-init uninstall clean

-include $(LIB_OBJ:.o=.d) $(T_LIB_OBJ:.o=.d) $(FUZZ_OBJ:.o=.d) $(B)/cmd/*.d \
	$(T)/cmd/*.d
