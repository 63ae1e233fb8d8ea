# rawipc's C library, built and installed the way C libraries are.
#
#   make                 build librawipc.a and librawipc.so (through cargo)
#   make check           run the tests: cargo test, and the C examples' check
#   make install         install the headers, the libraries, rawipc.pc and
#                        the man pages under $(DESTDIR)$(PREFIX)
#   make uninstall       remove what `make install` installed
#   make clean           remove the build directory
#
# Variables: PREFIX (/usr/local), LIBDIR ($(PREFIX)/lib), INCLUDEDIR
# ($(PREFIX)/include), MANDIR ($(PREFIX)/share/man), PKGCONFIGDIR
# ($(LIBDIR)/pkgconfig), DESTDIR (staging root, empty by default),
# CARGO (cargo), TARGET_DIR (target).
#
# Then: cc prog.c $(pkg-config --cflags --libs rawipc)
#  or, statically: cc -static prog.c $(pkg-config --static --cflags --libs rawipc)

PREFIX       ?= /usr/local
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
MANDIR       ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
DESTDIR      ?=

CARGO      ?= cargo
TARGET_DIR ?= target
INSTALL    ?= install

# The version is the C library's crate version (capi/Cargo.toml).
VERSION := $(shell sed -n 's/^version *= *"\([0-9.]*\)".*/\1/p' capi/Cargo.toml | head -n 1)
MAJOR   := $(word 1,$(subst ., ,$(VERSION)))
MINOR   := $(word 2,$(subst ., ,$(VERSION)))
# The ABI version in the soname: the major version, or 0.MINOR while the major
# version is 0 (a new 0.x release may break the ABI). capi/build.rs sets the
# same soname.
ABI     := $(if $(filter 0,$(MAJOR)),0.$(MINOR),$(MAJOR))

RELEASE := $(TARGET_DIR)/release
LIB_A   := $(RELEASE)/librawipc.a
LIB_SO  := $(RELEASE)/librawipc.so
SONAME  := librawipc.so.$(ABI)
REALNAME := librawipc.so.$(VERSION)
PC      := $(TARGET_DIR)/rawipc.pc

HEADERS := $(wildcard include/*.h)
MAN3    := $(wildcard man/man3/*.3)
MAN7    := $(wildcard man/man7/*.7)

.PHONY: all check install uninstall clean FORCE

# cargo decides what is out of date.
all: FORCE
	$(CARGO) build --release --manifest-path capi/Cargo.toml --target-dir $(TARGET_DIR)

# `make install` after `make` does not run cargo again (it may be run by
# another user, without cargo on its PATH); it builds only what is missing.
$(LIB_A) $(LIB_SO):
	$(CARGO) build --release --manifest-path capi/Cargo.toml --target-dir $(TARGET_DIR)

check: all
	$(CARGO) test
	$(MAKE) -C c-examples check

$(PC): FORCE
	@mkdir -p $(TARGET_DIR)
	@{ \
	  echo 'prefix=$(PREFIX)'; \
	  echo 'libdir=$(LIBDIR)'; \
	  echo 'includedir=$(INCLUDEDIR)'; \
	  echo; \
	  echo 'Name: rawipc'; \
	  echo 'Description: Shared memory, fork and wait, pipes, messages and a shared-memory channel for Linux'; \
	  echo 'Version: $(VERSION)'; \
	  echo 'Cflags: -I$${includedir}'; \
	  echo 'Libs: -L$${libdir} -lrawipc'; \
	} > $@

install: $(LIB_A) $(LIB_SO) $(PC)
	$(INSTALL) -d $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR) \
	  $(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man7
	$(INSTALL) -m 644 $(HEADERS) $(DESTDIR)$(INCLUDEDIR)/
	$(INSTALL) -m 644 $(LIB_A) $(DESTDIR)$(LIBDIR)/librawipc.a
	$(INSTALL) -m 755 $(LIB_SO) $(DESTDIR)$(LIBDIR)/$(REALNAME)
	ln -sf $(REALNAME) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/librawipc.so
	$(INSTALL) -m 644 $(PC) $(DESTDIR)$(PKGCONFIGDIR)/rawipc.pc
	$(INSTALL) -m 644 $(MAN3) $(DESTDIR)$(MANDIR)/man3/
	$(INSTALL) -m 644 $(MAN7) $(DESTDIR)$(MANDIR)/man7/

uninstall:
	rm -f $(HEADERS:include/%=$(DESTDIR)$(INCLUDEDIR)/%)
	rm -f $(DESTDIR)$(LIBDIR)/librawipc.a $(DESTDIR)$(LIBDIR)/$(REALNAME) \
	  $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/librawipc.so
	rm -f $(DESTDIR)$(PKGCONFIGDIR)/rawipc.pc
	rm -f $(MAN3:man/man3/%=$(DESTDIR)$(MANDIR)/man3/%) $(MAN7:man/man7/%=$(DESTDIR)$(MANDIR)/man7/%)

clean:
	$(CARGO) clean --manifest-path capi/Cargo.toml --target-dir $(TARGET_DIR) --release
	rm -f $(PC)
