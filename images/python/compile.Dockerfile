# images/python/compile.Dockerfile: CPython compiled from its source tarball into /usr/local, the
# slow part of the upstream `python:<version>-slim-<release>` image (12-15 min with PGO+LTO on 2
# cores). The result is a `FROM scratch` tree image: /usr/local plus /runtime-packages, the Debian
# packages its binaries link to. images/python/Dockerfile assembles it onto a Debian slim base.
# Built by `nox -s bootstrap` (pybase/upstream.py) only when no tree with the same key exists: the
# key digests this file's text, the version, the tarball's sha256, the Debian release and the
# optimize switch, and nothing else. A refreshed Debian base (same release) reuses the tree.
# The build context holds only Python.tar.xz, already verified against versions.yaml.

ARG DEBIAN_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------------------------------------
# Stage 1: compile CPython into /usr/local and list the Debian packages its binaries link to.
# ---------------------------------------------------------------------------------------------
FROM ${DEBIAN_IMAGE} AS compile

# bash for `ulimit -s` and pipefail: a failing step inside a pipeline must fail the build.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# The official slim build dependencies, less wget and gnupg (pybase fetched and verified the
# tarball) and less tk-dev and libbluetooth-dev (so no tkinter, no Bluetooth sockets).
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends \
        dpkg-dev gcc libc6-dev make xz-utils \
        libbz2-dev libdb-dev libffi-dev libgdbm-dev liblzma-dev libncursesw5-dev \
        libreadline-dev libsqlite3-dev libssl-dev uuid-dev zlib1g-dev; \
    rm -rf /var/lib/apt/lists/*

ARG PYTHON_VERSION
ARG PYTHON_SHA256
# 1 = the official --enable-optimizations --with-lto (PGO+LTO); 0 = a plain build.
ARG PYTHON_OPTIMIZE=0
# 1 = frame pointers on amd64/arm64, so that `perf` and eBPF profilers unwind native stacks
#   without DWARF (https://docs.python.org/3.13/howto/perf_profiling.html). Off: they cost 5 %
#   (pyperformance geometric mean, 3.13.15 on trixie, `nox -s bench -- --speed`: 0.952x, up to
#   13 % on nbody), which is what put this build behind Debian's (0.967x with, 1.016x without).
#   `python -X perf_jit` (3.13+) gives perf Python frames without them. The bench builds the
#   other setting.
ARG PYTHON_FRAME_POINTERS=0
# 0 = the interpreter executable is not position-independent (ELF type EXEC), as Debian links
#   its /usr/bin/python3.X: code addresses are link-time constants, so the eval loop's computed
#   gotos, jump tables and globals need no base register. `nox -s bench -- --speed` measures
#   the other setting (1 = a PIE, the recipe until 2026-12). What it costs: the executable's
#   own code and data sit at a fixed address (libraries, heap and stack stay randomized).
ARG PYTHON_PIE=0
# The regrtest arguments of the PGO training run; empty = CPython's own (`-m test --pgo`).
# The bench builds a wider one (--pgo-extended) to measure the training set on its own.
ARG PYTHON_PGO_TASK=""

# The profile run of a PGO build recurses deeply (test_functools) and overflows the default 8 MiB
# stack here, so the stack limit is lifted in the same shell that runs make. The same overflow
# in PGO profile runs, upstream (Windows): https://github.com/python/cpython/issues/113655
WORKDIR /usr/src/python
# The tarball is checked again here: the bind mount is this build's only input.
# --enable-shared: libpython3.X.so is installed for embedders, as in the official image since
#   https://github.com/docker-library/python/pull/23 (but see the static interpreter below).
# --enable-option-checking=fatal: a misspelt configure option fails instead of being ignored.
# EXTRA_CFLAGS adds Debian's hardening flags (dpkg-buildflags) to CPython's own, with two
#   changes that Debian's own python3.X build makes too (debian/rules of python3.13). With the
#   static interpreter below, they made this build 1.168x the official recipe's (same bench):
#   - no -O level: CPython's -O3 stays. EXTRA_CFLAGS comes last on the command line, so the
#     official recipe's `-O2` from dpkg-buildflags silently replaces it.
#   - -fstack-protector instead of -strong: canaries in functions with character arrays only,
#     not in every function that takes an address (the eval loop does, on every call).
# -Wl,--strip-all (slim images only): no symbol tables, 20-30 MB smaller;
#   https://github.com/docker-library/python/pull/483 (from issues/448).
# Frame pointers only with PYTHON_FRAME_POINTERS=1 (above; the official image has them:
#   https://github.com/docker-library/python/pull/1000#issuecomment-2597021615).
# SC3045 reads RUN as POSIX sh; this stage's SHELL is bash, which has `ulimit -s`. SC2016: the
# single-quoted `$(LIBRARY_OBJS)` is for make to expand, not the shell.
# hadolint ignore=SC2016,SC3045
RUN --mount=type=bind,source=Python.tar.xz,target=/usr/src/Python.tar.xz \
    set -eux; \
    echo "${PYTHON_SHA256} */usr/src/Python.tar.xz" | sha256sum -c -; \
    tar --extract --strip-components=1 --file /usr/src/Python.tar.xz; \
    gnuArch="$(dpkg-architecture --query DEB_BUILD_GNU_TYPE)"; \
    optimize=""; \
    if [ "${PYTHON_OPTIMIZE}" = 1 ]; then optimize="--enable-optimizations --with-lto"; fi; \
    # shellcheck disable=SC2086
    ./configure \
        --build="$gnuArch" \
        --enable-loadable-sqlite-extensions \
        --enable-option-checking=fatal \
        --enable-shared \
        --with-ensurepip \
        $optimize; \
    EXTRA_CFLAGS=""; \
    for flag in $(dpkg-buildflags --get CFLAGS); do \
        case "$flag" in \
            -O*) ;; \
            -fstack-protector-strong) EXTRA_CFLAGS="$EXTRA_CFLAGS -fstack-protector" ;; \
            *) EXTRA_CFLAGS="$EXTRA_CFLAGS $flag" ;; \
        esac; \
    done; \
    LDFLAGS="$(dpkg-buildflags --get LDFLAGS) -Wl,--strip-all"; \
    case "$(dpkg --print-architecture)/${PYTHON_FRAME_POINTERS}" in \
        amd64/1|arm64/1) EXTRA_CFLAGS="$EXTRA_CFLAGS -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer" ;; \
    esac; \
    ulimit -s unlimited; \
    set -- "EXTRA_CFLAGS=$EXTRA_CFLAGS" "LDFLAGS=$LDFLAGS"; \
    if [ -n "${PYTHON_PGO_TASK}" ]; then set -- "$@" "PROFILE_TASK=${PYTHON_PGO_TASK}"; fi; \
    make -j "$(nproc)" "$@"; \
    # The interpreter executable is linked again, from libpython's (PGO-optimized) objects rather
    # than against libpython3.X.so, as Debian links /usr/bin/python3.X: calls, globals and the
    # thread state (thread-local) become direct accesses instead of going through the PLT, the
    # GOT and __tls_get_addr. The shared library is still installed for embedders and for
    # `python3-config --embed`; extension modules find the C API in the executable
    # (-export-dynamic). The make variables are the ones a --disable-shared build uses.
    # -no-pie (PYTHON_PIE=0): the objects were compiled -fPIC for libpython, but with LTO the
    # code is generated at this link, and GCC generates it for the output type the linker
    # reports (lto_post_options: an executable gets neither -fPIC nor -fPIE), so no second
    # compile of the objects is needed.
    rm python; \
    if [ "${PYTHON_PIE}" = 0 ]; then LDFLAGS="$LDFLAGS -no-pie"; fi; \
    make "EXTRA_CFLAGS=$EXTRA_CFLAGS" "LDFLAGS=$LDFLAGS" \
        'LINK_PYTHON_DEPS=$(LIBRARY_OBJS)' 'LINK_PYTHON_OBJS=$(LIBRARY_OBJS)' python; \
    readelf --file-header python | grep -E '^ +Type:'; \
    make install

# Not needed to run Python, and tens of MB: the test suites (idle_test too:
# https://github.com/docker-library/python/issues/214), the .pyc written during the build, and
# the static libpython, unused with --enable-shared
# (https://github.com/docker-library/python/issues/507; only libpython*.a, not every .a:
# https://github.com/docker-library/python/pull/706).
# The unversioned names (python, pip, pydoc, idle, python-config) exist, as in the official image.
WORKDIR /
RUN set -eux; \
    rm -rf /usr/src/python; \
    find /usr/local -depth \
        \( \
            \( -type d -a \( -name test -o -name tests -o -name idle_test \) \) \
            -o \( -type f -a \( -name '*.pyc' -o -name '*.pyo' -o -name 'libpython*.a' \) \) \
        \) -exec rm -rf '{}' +; \
    for src in idle3 pip3 pydoc3 python3 python3-config; do \
        ln -svT "$src" "/usr/local/bin/$(echo "$src" | tr -d 3)"; \
    done

# The Debian packages that own the shared libraries CPython links against, for the assembly
# (trixie's t64 packages add "diversion by ..." lines to dpkg's answer: not package names).
# ldd lists every library of every executable/module in /usr/local (CPython's own skipped); the
# leading "/" or "/usr/" is replaced by `*` so that dpkg-query --search matches the file whether
# dpkg recorded it under /lib or /usr/lib (merged /usr). The official image marks these packages
# manual and autoremoves the rest instead, which left the toolchain on an mmdebstrap rootfs; here
# the assembly installs them by name. dpkg-query's output format:
# https://manpages.debian.org/bookworm/dpkg/dpkg-query.1.en.html#S
RUN set -eux; \
    ldconfig; \
    find /usr/local -type f -executable -exec ldd '{}' ';' \
        | awk '/=>/ { so = $(NF-1); if (index(so, "/usr/local/") == 1) { next }; gsub("^/(usr/)?", "", so); printf "*%s\n", so }' \
        | sort -u \
        | xargs -r dpkg-query --search \
        | awk -F: '!/^diversion / { print $1 }' \
        | sort -u > /runtime-packages; \
    cat /runtime-packages

# ---------------------------------------------------------------------------------------------
# Stage 2: the tree: only what the assembly copies, so the cached result holds no toolchain.
# ---------------------------------------------------------------------------------------------
FROM scratch AS tree
COPY --from=compile /usr/local/ /usr/local/
COPY --from=compile /runtime-packages /runtime-packages
