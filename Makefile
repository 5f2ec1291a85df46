# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_INDEX ?= .citewise/demo-index
DEMO_QUERY ?= What is the walrus operator and why was it added?

# llama.cpp is compiled for this CPU (-march=native) but without AMX: where the kernel or hypervisor does
# not enable AMX tiles (containers, some VMs), its first matrix product segfaults. The wheel is built once
# per CPU type into a folder of its own, so pip's cache can never hand back a build with AMX in it.
LLAMA_CPP := llama-cpp-python==0.3.36
NO_AMX := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
CPU_ID := $(shell grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | md5sum | cut -c1-8)
LLAMA_WHEELS ?= $(HOME)/.cache/citewise/wheels/llama-cpp-$(CPU_ID)-noamx

.PHONY: demo test test-unit install browser clean-demo

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	@ls $(LLAMA_WHEELS)/llama_cpp_python-0.3.36-*.whl >/dev/null 2>&1 || \
	  CMAKE_ARGS="-DCMAKE_C_FLAGS='$(NO_AMX)' -DCMAKE_CXX_FLAGS='$(NO_AMX)'" \
	  $(BIN)/pip wheel --no-deps --no-cache-dir -w $(LLAMA_WHEELS) "$(LLAMA_CPP)"
	$(BIN)/pip install --find-links $(LLAMA_WHEELS) -e ".[models,eval,test]"
	# PDF support: unstructured imports unstructured-inference, whose own pins would pull a CUDA
	# torchvision; its runtime needs come with citewise, so it is installed without dependencies.
	$(BIN)/pip install --no-deps "unstructured-inference==1.6.14"
	touch $@

demo: install
	$(BIN)/citewise ingest demo/peps --index $(DEMO_INDEX)
	$(BIN)/citewise search "$(DEMO_QUERY)" --index $(DEMO_INDEX) -k 3
	$(BIN)/citewise ask "$(DEMO_QUERY)" --index $(DEMO_INDEX)

# The web page's end-to-end test drives Debian's Chromium (Playwright's own browser download is
# neither needed nor reachable); installed once through apt when missing.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  echo "installing Debian's chromium for the browser test"; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium \
	  || { $$SUDO apt-get update -qq && \
	       $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }; }

# Two tests at a time: much of a test's wall time is processes and servers starting, which the other test's
# computing fills. Each worker loads its own models, so more workers need memory more than cores.
TEST_WORKERS ?= 2

test: install browser
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal

# The fast tier: no real model, subprocess, server or `unstructured` parse (tests marked `unit`).
test-unit: install
	$(BIN)/python -m pytest -q -m unit

clean-demo:
	rm -rf $(DEMO_INDEX)
