# postern: build, test, install.
#
#   make            programs in build/
#   make check      unit tests (cmocka) and integration tests (pytest), all
#                   built with AddressSanitizer and UBSan in test/build/
#                   (halting on the first report), 5 s of each fuzz target
#   make fuzz-long  each fuzz target for 10 minutes (test/fuzz/corpus seeds)
#   make check-mutants  the durability tests must fail with any fsync,
#                   directory fsync or take-back removed
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
# -fno-sanitize-recover=all: the first report of any sanitizer ends the
# program (UBSan would otherwise print a line and carry on, exit 0), and
# SAN_ENV says the same at run time wherever make runs a test program.
SAN	= -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
SAN_ENV	= ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
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

# ---- fuzzing (libFuzzer) --------------------------------------------------
# Every test/fuzz/fuzz_NAME.c is a target, and test/fuzz/corpus/fuzz_NAME/
# its seed inputs, kept in the tree: a target without seeds fails the run.
# `make fuzz` (part of make check) runs each target FUZZ_SECS seconds,
# `make fuzz-long` ten minutes each; test/fuzz/run.sh prints each run's
# final line (executions, cov: edges, ft: features). The builds halt on
# the first sanitizer report, as the test build does.
FUZZ_SRC = $(sort $(wildcard test/fuzz/fuzz_*.c))
FUZZ_BIN = $(FUZZ_SRC:test/fuzz/%.c=$(T)/fuzz/%)
FUZZ_SECS ?= 5
FUZZ_CC	= clang
FUZZ_SAN = -fsanitize=address,undefined -fno-sanitize-recover=all

# The library is compiled once with coverage instrumentation
# (fuzzer-no-link) and each target links against it.
FZ	= $(T)/fuzzobj
FUZZ_CFLAGS = $(CSTD) -g -O1 -Isrc \
	-DPOSTERN_SYSCONFDIR='"$(SYSCONFDIR)"' -DPOSTERN_SPOOLDIR='"$(SPOOLDIR)"'
FUZZ_OBJ = $(LIB_SRC:src/%.c=$(FZ)/%.o)

$(FZ)/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(FUZZ_SAN) \
		-MMD -MP -c -o $@ $<

$(FZ)/libpostern.a: $(FUZZ_OBJ)
	rm -f $@ && ar rcs $@ $^

$(T)/fuzz/%: test/fuzz/%.c $(FZ)/libpostern.a
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(FUZZ_SAN) \
		-o $@ $< $(FZ)/libpostern.a $(ADMIN_LIBS)

fuzz: $(FUZZ_BIN)
	@$(SAN_ENV) test/fuzz/run.sh $(FUZZ_SECS) $(T) $(FUZZ_BIN)

fuzz-long:
	$(MAKE) fuzz FUZZ_SECS=600

# A sanitizer report must fail the run: a signed overflow in a program
# built with the unit tests' flags, and in a fuzz target built with the
# fuzz flags, must each exit non-zero with UBSan's report
# (test/sanitizers/expect-halt). These programs are broken on purpose and
# live outside test/unit and test/fuzz.
$(T)/sanitizers/overflow: test/sanitizers/overflow.c
	@mkdir -p $(dir $@)
	$(CC) $(T_CFLAGS) -o $@ $<
$(T)/sanitizers/fuzz_overflow: test/sanitizers/fuzz_overflow.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $<

check-sanitizers: $(T)/sanitizers/overflow $(T)/sanitizers/fuzz_overflow
	@test/sanitizers/expect-halt $(T)/sanitizers/overflow 2147483647
	@test/sanitizers/expect-halt $(T)/sanitizers/fuzz_overflow \
		-runs=1000000 -seed=1 -artifact_prefix=$(T)/sanitizers/

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
	$(MAKE) check-sanitizers
	$(MAKE) unit
	$(MAKE) fuzz FUZZ_SECS=5
	$(MAKE) integ
	$(MAKE) check-mutants

check-build: $(T_PROGS) $(UNIT_BIN)

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; \
		$(SAN_ENV) $$t; done

# logwatch's package depends on an MTA: it is unpacked, never installed.
integ: $(T_PROGS)
	LOGWATCH_ROOT="$$(scripts/unpack-deb logwatch $(CURDIR)/$(T)/deps)" \
	POSTERN_BIN=$(CURDIR)/$(T) $(SAN_ENV) $(PYTHON) -m pytest -q -rs --durations=12 \
		-p no:cacheprovider test/integ $(PYTEST_ARGS)

# Each fsync, directory fsync and take-back removed in turn (MUTANT() in
# src/lib/mutant.h): the durability tests must fail for every one.
# (The settings reach it unparsed by the shell, as environment variables.)
check-mutants: export MUTANT_CC = $(CC)
check-mutants: export MUTANT_CFLAGS = $(T_CFLAGS)
check-mutants: export MUTANT_SAN = $(SAN)
check-mutants: export MUTANT_SENDMAIL_LIBS = $(SENDMAIL_LIBS)
check-mutants: export MUTANT_DAEMON_LIBS = $(DAEMON_LIBS)
check-mutants: export MUTANT_ADMIN_LIBS = $(ADMIN_LIBS)
check-mutants: $(T_PROGS)
	$(PYTHON) scripts/check-mutants $(CURDIR)/$(T)

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

.PHONY: all deps deps-demo check check-build check-sanitizers unit integ fuzz \
	fuzz-long check-mutants demo bench install \
	install-init uninstall clean

-include $(LIB_OBJ:.o=.d) $(T_LIB_OBJ:.o=.d) $(FUZZ_OBJ:.o=.d) $(B)/cmd/*.d \
	$(T)/cmd/*.d
