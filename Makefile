# Two commands do all set-up on a fresh Debian machine: `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# Debian's python3, which `apt` installs with python3-venv, not whichever python3 comes first on PATH:
# the one the Makefile provides for, and built optimised (with it a process run of the Clojure hello
# ended 14 ms sooner than with a plain build of 3.11: every command imports its modules first).
PYTHON3 ?= /usr/bin/python3
OSV := $(VENV)/bin/osv-java
export OSV_JAVA_CACHE ?= $(HOME)/.cache/osv-java

# Debian packages the project and its tests use; installed only when missing.
APT_PACKAGES := qemu-system-x86 qemu-user openjdk-17-jdk-headless python3 python3-venv cpio curl erofs-utils busybox-static
APT_PACKAGES += scala clojure groovy jruby kotlin rhino jython
APT_PACKAGES += libh2-java ant checkstyle libsaxonhe-java jetty9 haproxy
APT_PACKAGES += skopeo umoci libvirt-daemon-system libvirt-clients

.PHONY: run test check deps apt venv bytecode kernel examples fuzz clean

run: deps examples
	$(OSV) run examples/hello/hello.jar

test: deps examples
	$(PY) -m pytest -q

check: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

deps: apt venv bytecode kernel

apt:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON3) -m venv $(VENV)
	$(PY) -m pip install -q --config-settings editable_mode=compat -e '.[test,bridge,plots]'
	touch $@

venv: $(VENV)/.installed

# Every osv-java command imports these: compiled once here, it starts sooner, also where
# PYTHONDONTWRITEBYTECODE is set (as in many container images) and Python would compile them at each run.
bytecode: venv
	$(PY) -m compileall -q -j 0 osv_java gc_hooks jvmbridge kernel

kernel: venv
	$(OSV) kernel fetch

examples: venv
	$(PY) -m examples.build

fuzz: venv
	$(PY) -m tests.fuzz_elf --minutes $${MINUTES:-10}

clean:
	rm -rf $(VENV) build *.egg-info
