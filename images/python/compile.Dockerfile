# images/python/compile.Dockerfile: CPython compiled from its source tarball into /usr/local, the
# slow part of the upstream `python:<version>-slim-<release>` image (12-15 min with PGO+LTO on 2
# cores). The result is a `FROM scratch` tree image: /usr/local plus /runtime-packages, the Debian
# packages its binaries link to. images/python/Dockerfile assembles it onto a Debian slim base.
# Built by `nox -s bootstrap` (pybase/upstream/cpython_build.py) only when no tree with the same
# key exists: the key digests this file's text, the version, the tarball's sha256, the Debian
# release, the platform and the optimisation, and nothing else. A refreshed Debian base (same
# release) reuses the tree. The build context holds only Python.tar.xz, already verified against
# versions.yaml.
#
# Another platform (`--platform linux/arm64` on an amd64 machine) is cross-compiled: the compile
# stage runs natively on the build platform with Debian's cross compiler and the target's -dev
# packages (multiarch), and CPython's own build steps run the native interpreter of the same
# version (BUILD_PYTHON). Only the tree is the target's. No PGO then: the profile run would have
# to execute the target's code (see PYTHON_OPTIMIZE).

# The Debian base of the build platform (the compile stage runs there).
ARG DEBIAN_IMAGE=debian:bookworm-slim
# For a cross-compile: the native tree of the same version and release, whose interpreter runs
# CPython's build steps. A native build reads nothing from it (pybase passes the Debian base).
ARG BUILD_PYTHON=${DEBIAN_IMAGE}

# DL3006 wants a tagged FROM; pybase passes a full tag.
# hadolint ignore=DL3006
FROM --platform=${BUILDPLATFORM} ${BUILD_PYTHON} AS build-python

# ---------------------------------------------------------------------------------------------
# Stage 1: compile CPython into /usr/local and list the Debian packages its binaries link to.
# ---------------------------------------------------------------------------------------------
FROM --platform=${BUILDPLATFORM} ${DEBIAN_IMAGE} AS compile

# bash for `ulimit -s` and pipefail: a failing step inside a pipeline must fail the build.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# BuildKit's names for the platforms (amd64, arm64: the same as Debian's).
ARG BUILDARCH
ARG TARGETARCH

# 1 = BOLT (LLVM's post-link optimizer, Debian's bolt-19) lays out the interpreter executable's
#   code by a profile of CPython's PGO training, after PGO+LTO. Bench-only (`nox -s bench --
#   --speed`, lever `bolt`): it has to pay for itself there before a shipped tree gets it.
ARG PYTHON_BOLT=0

# The official slim build dependencies, less wget and gnupg (pybase fetched and verified the
# tarball) and less tk-dev and libbluetooth-dev (so no tkinter, no Bluetooth sockets). The
# libraries are the target architecture's (multiarch); a cross-compile takes Debian's cross gcc.
# $libs must word-split into package names.
# hadolint ignore=DL3008,SC2086
RUN set -eux; \
    compiler="gcc libc6-dev"; \
    if [ "$PYTHON_BOLT" = 1 ]; then compiler="$compiler bolt-19"; fi; \
    if [ "$TARGETARCH" != "$BUILDARCH" ]; then \
        dpkg --add-architecture "$TARGETARCH"; \
        compiler="crossbuild-essential-$TARGETARCH libc6-dev:$TARGETARCH"; \
    fi; \
    libs=""; \
    for lib in libbz2-dev libdb-dev libffi-dev libgdbm-dev liblzma-dev libncursesw5-dev \
               libreadline-dev libsqlite3-dev libssl-dev uuid-dev zlib1g-dev; do \
        libs="$libs $lib:$TARGETARCH"; \
    done; \
    apt-get update; \
    apt-get install -y --no-install-recommends dpkg-dev make xz-utils $compiler $libs; \
    rm -rf /var/lib/apt/lists/*

ARG PYTHON_VERSION
ARG PYTHON_SHA256
# 1 = the official --enable-optimizations --with-lto (PGO+LTO); 0 = a plain build; lto = LTO
#   without PGO. A cross-compile gets LTO only: PGO's profile run executes the interpreter just
#   built, which here would run under emulation for hours (an arm64 runner compiles natively,
#   with PGO). The bench builds `lto` natively to measure what the missing PGO costs.
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
# A cross-compile tells configure what it cannot find out by running a test program:
#   /dev/ptmx exists and /dev/ptc does not (Linux), and getaddrinfo works (--enable-ipv6).
# hadolint ignore=SC2016,SC3045
RUN --mount=type=bind,source=Python.tar.xz,target=/usr/src/Python.tar.xz \
    --mount=type=bind,from=build-python,source=/usr/local,target=/opt/build-python \
    set -eux; \
    echo "${PYTHON_SHA256} */usr/src/Python.tar.xz" | sha256sum -c -; \
    tar --extract --strip-components=1 --file /usr/src/Python.tar.xz; \
    buildArch="$(dpkg-architecture --query DEB_BUILD_GNU_TYPE)"; \
    hostArch="$(dpkg-architecture --host-arch "$TARGETARCH" --query DEB_HOST_GNU_TYPE 2>/dev/null)"; \
    optimize=""; \
    case "${PYTHON_OPTIMIZE}" in 1|lto) optimize="--with-lto" ;; esac; \
    boltSkip="_PyEval_EvalFrameDefault"; \
    for n in 1 2 4; do boltSkip="$boltSkip,sre_ucs${n}_match/1,sre_ucs${n}_match.lto_priv.0/1"; done; \
    if [ "$buildArch" = "$hostArch" ]; then \
        set -- --build="$buildArch"; \
        if [ "${PYTHON_OPTIMIZE}" = 1 ]; then optimize="--enable-optimizations --with-lto"; fi; \
        if [ "${PYTHON_BOLT}" = 1 ]; then \
            set -- "$@" --enable-bolt LLVM_BOLT=/usr/lib/llvm-19/bin/llvm-bolt \
                MERGE_FDATA=/usr/lib/llvm-19/bin/merge-fdata \
                "BOLT_COMMON_FLAGS=-update-debug-sections -skip-funcs=$boltSkip"; \
        fi; \
    else \
        set -- --build="$buildArch" --host="$hostArch" --enable-ipv6 \
            --with-build-python="$(echo /opt/build-python/bin/python3.*[0-9])" \
            ac_cv_file__dev_ptmx=yes ac_cv_file__dev_ptc=no; \
    fi; \
    # shellcheck disable=SC2086
    ./configure "$@" \
        --enable-loadable-sqlite-extensions \
        --enable-option-checking=fatal \
        --enable-shared \
        --with-ensurepip \
        $optimize; \
    EXTRA_CFLAGS=""; \
    for flag in $(dpkg-architecture --host-arch "$TARGETARCH" --command dpkg-buildflags --get CFLAGS 2>/dev/null); do \
        case "$flag" in \
            -O*) ;; \
            -fstack-protector-strong) EXTRA_CFLAGS="$EXTRA_CFLAGS -fstack-protector" ;; \
            *) EXTRA_CFLAGS="$EXTRA_CFLAGS $flag" ;; \
        esac; \
    done; \
    LDFLAGS="$(dpkg-architecture --host-arch "$TARGETARCH" --command dpkg-buildflags --get LDFLAGS 2>/dev/null)"; \
    if [ "${PYTHON_BOLT}" != 1 ]; then LDFLAGS="$LDFLAGS -Wl,--strip-all"; fi; \
    case "${TARGETARCH}/${PYTHON_FRAME_POINTERS}" in \
        amd64/1|arm64/1) EXTRA_CFLAGS="$EXTRA_CFLAGS -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer" ;; \
    esac; \
    ulimit -s unlimited; \
    set -- "EXTRA_CFLAGS=$EXTRA_CFLAGS" "LDFLAGS=$LDFLAGS"; \
    if [ -n "${PYTHON_PGO_TASK}" ]; then set -- "$@" "PROFILE_TASK=${PYTHON_PGO_TASK}"; fi; \
    # With BOLT, make stops after PGO+LTO (profile-opt): BOLT runs on the relinked executable.
    if [ "${PYTHON_BOLT}" = 1 ]; then make -j "$(nproc)" "$@" profile-opt; else make -j "$(nproc)" "$@"; fi; \
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
    shift 2; \
    set -- "EXTRA_CFLAGS=$EXTRA_CFLAGS" "LDFLAGS=$LDFLAGS" \
        'LINK_PYTHON_DEPS=$(LIBRARY_OBJS)' 'LINK_PYTHON_OBJS=$(LIBRARY_OBJS)' "$@"; \
    make "$@" python; \
    readelf --file-header python | grep -E '^ +(Type|Machine):'; \
    # BOLT: CPython's own BOLT step (instrument, run the PGO training, optimize) on the relinked
    # executable only (libpython3.X.so is not in the slim image); it needs the link's symbols
    # and relocations (--emit-relocs), so the executable and libraries are stripped afterwards.
    # Skipped by BOLT, as CPython's configure does for LLVM 19: the functions with computed
    # gotos, and their GCC LTO clones (`.lto_priv.0`, cpython PR 139840). The training leaves
    # out test_embed, which crashes BOLT-instrumented builds (cpython issue 128473).
    if [ "${PYTHON_BOLT}" = 1 ]; then \
        rm -f profile-bolt-stamp; \
        make "$@" 'BOLT_BINARIES=$(BUILDPYTHON)' \
            'PROFILE_TASK=-m test --pgo -x test_embed --timeout=$(TESTTIMEOUT)' profile-bolt-stamp; \
    fi; \
    make install; \
    if [ "${PYTHON_BOLT}" = 1 ]; then \
        strip --strip-all /usr/local/bin/python3.*[0-9]; \
        find /usr/local/lib -type f -name '*.so*' -exec strip --strip-all '{}' +; \
    fi

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
# readelf lists the libraries each executable and module in /usr/local needs (CPython's own
# skipped); they are looked up in the target's multiarch directory, where dpkg recorded them
# under /lib or /usr/lib (merged /usr), hence the leading `*`. readelf reads any architecture's
# ELF files, so a cross-compiled tree gets its list the same way (the packages' names are the
# same on every architecture; their dependencies come with apt in the assembly). The official
# image marks these packages manual and autoremoves the rest instead, which left the toolchain on
# an mmdebstrap rootfs; here the assembly installs them by name. dpkg-query's output format:
# https://manpages.debian.org/bookworm/dpkg/dpkg-query.1.en.html#S
RUN set -eux; \
    hostArch="$(dpkg-architecture --host-arch "$TARGETARCH" --query DEB_HOST_MULTIARCH 2>/dev/null)"; \
    find /usr/local -type f -executable -exec readelf --dynamic '{}' ';' 2>/dev/null \
        | awk -v dir="$hostArch" '/\(NEEDED\)/ { so = $NF; gsub(/[][]/, "", so); if (so !~ /^libpython/) { printf "*/%s/%s\n", dir, so } }' \
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
