# GHM on libtorch. Two commands on a fresh machine:
#   make demo   builds everything and runs the main job on an embedded default: parity with MMDetection, then
#               fine-tuning on real aerial images (tools/finetune_demo.sh; `make demo-finetune` runs only that)
#   make test   builds everything and runs the test suite
# Every target is idempotent and quick when nothing changed.
#
# Another libtorch (e.g. a CUDA one): make shim TORCH_CMAKE_PREFIX=/path/to/libtorch/share/cmake
SHELL := /bin/bash
ROOT := $(abspath .)
PY := $(ROOT)/.venv/bin/python
SHIM_BUILD := $(ROOT)/.build-shim
TORCH_CMAKE_PREFIX ?=
SWIFT_BUILD_FLAGS ?=
DIST := $(ROOT)/dist
# build-progress lines hidden from the output
QUIET := ^(\[[0-9]+/[0-9]+\] |Building for |Write |Compiling |Linking |Fetching |Fetched |Computing |Computed |Creating working copy|Working copy )

.PHONY: all setup mmdet-env shim build test demo demo-finetune bench fuzz clean info

all: build

setup:
	@tools/setup.sh

# The independent Python reference: MMDetection 2.16.0 in its own venv (.venv-mmdet); quick when present.
mmdet-env: setup
	@tools/mmdet_env.sh

# The shim is configured against the venv's libtorch unless TORCH_CMAKE_PREFIX names another one.
shim: setup
	@prefix="$(TORCH_CMAKE_PREFIX)"; \
	if [ -z "$$prefix" ]; then prefix="$$($(PY) -c 'import torch;print(torch.utils.cmake_prefix_path)')"; fi; \
	if [ ! -f "$(SHIM_BUILD)/build.ninja" ] || [ "$$(cat $(SHIM_BUILD)/.prefix 2>/dev/null)" != "$$prefix" ]; then \
	  echo "[shim] configuring against $$prefix"; \
	  cmake -S CShim -B "$(SHIM_BUILD)" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$$prefix" >/dev/null \
	    && echo "$$prefix" > "$(SHIM_BUILD)/.prefix"; \
	fi; \
	set -o pipefail; cmake --build "$(SHIM_BUILD)" | { grep -v '^ninja: no work to do' || true; }; \
	test -f "$(SHIM_BUILD)/lib/libghm_torch.so" && test -f "$(SHIM_BUILD)/lib/libghm_vision.so"

# Debug build of everything (tests use it) and a relocatable release bundle of the tool in dist/:
# dist/bin/ghm (static Swift runtime) + dist/lib/libghm_*.so; the binary's run-time path finds both.
build: shim
	@set -o pipefail; swift build $(SWIFT_BUILD_FLAGS) 2>&1 | { grep -Ev "$(QUIET)" || true; }
	@set -o pipefail; swift build -c release --product ghm --static-swift-stdlib $(SWIFT_BUILD_FLAGS) 2>&1 \
	  | { grep -Ev "$(QUIET)" || true; }
	@mkdir -p $(DIST)/bin $(DIST)/lib
	@cp -f .build/release/ghm $(DIST)/bin/ghm.tmp && mv -f $(DIST)/bin/ghm.tmp $(DIST)/bin/ghm
	@cp -f $(SHIM_BUILD)/lib/libghm_torch.so $(SHIM_BUILD)/lib/libghm_vision.so $(DIST)/lib/
	@echo "[build] dist/bin/ghm ready"

test: build mmdet-env
	@set -o pipefail; swift test $(SWIFT_BUILD_FLAGS) 2>&1 | tee .build/test.log | { grep -Ev "$(QUIET)" || true; }

demo: build mmdet-env
	@tools/demo.sh
	@echo
	@tools/finetune_demo.sh

# Fine-tuning on the deepforest wheel's NEON tree-crown images (GHM_DEMO_CHECKPOINT=file.pth: your start weights)
demo-finetune: build
	@tools/finetune_demo.sh

# Benchmarks: ratios against the Python reference measured in the same run.
bench: build mmdet-env
	@$(DIST)/bin/ghm bench detect
	@$(DIST)/bin/ghm bench train
	@$(DIST)/bin/ghm bench loss
	@$(DIST)/bin/ghm bench cocoeval
	@$(DIST)/bin/ghm bench checkpoint

info: build
	@$(DIST)/bin/ghm info

# Fuzzes the checkpoint readers (100,000 mutated checkpoints; FUZZ_ITERATIONS / FUZZ_SEED to change)
fuzz: shim
	@SWIFT_BUILD_FLAGS="$(SWIFT_BUILD_FLAGS)" tools/fuzz_checkpoint.sh $(or $(FUZZ_ITERATIONS),100000) $(or $(FUZZ_SEED),1)

clean:
	rm -rf .build .build-shim dist
