#!/usr/bin/env bash
# What this machine offers perceptd's GPU path, and what it measures there. Builds nothing.
#
#   scripts/device-check.sh [--out DIR]
#
# 1. Inventory: GPU and driver (nvidia-smi), CUDA, cuDNN and TensorRT libraries, and which
#    execution providers the installed onnxruntime-node binding can load (a real session on
#    the default model per provider), and whether it hands them their options (our patch).
# 2. Where a GPU provider loads: `perceptd bench model` for the dense, pruned and quantized
#    models on CUDA and on TensorRT FP32/FP16/INT8 (models missing from the manifest are
#    skipped, with a line saying so), then one 60 s `perceptd soak` if that command exists.
# Everything goes under one folder (default .cache/device-check/<UTC time>); the last line
# says in words what was found.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
out=""
while (($#)); do
  case "$1" in
    --out) out="${2:?--out needs a folder}"; shift 2 ;;
    -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "device-check: unknown argument '$1' (see --help)" >&2; exit 64 ;;
  esac
done
[[ -n $out ]] || out=".cache/device-check/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out" || { echo "device-check: cannot create $out" >&2; exit 73; }
out=$(cd "$out" && pwd)
inventory="$out/inventory.txt"
: >"$inventory"

note() { echo "device-check: $*" | tee -a "$inventory"; }
found=()   # what is there, for the last line
missing=() # what is not

# --- GPU and driver
gpu=""
if command -v nvidia-smi >/dev/null 2>&1; then
  if nvidia-smi >"$out/nvidia-smi.txt" 2>&1; then
    gpu=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -n 1)
    note "GPU: ${gpu:-listed by nvidia-smi (see nvidia-smi.txt)}"
    found+=("GPU ${gpu:-present}")
  else
    note "nvidia-smi failed: $(head -n 1 "$out/nvidia-smi.txt")"
    missing+=("a working NVIDIA driver: nvidia-smi failed")
  fi
else
  note "nvidia-smi: not found"
  missing+=("NVIDIA GPU: nvidia-smi not found")
fi
[[ -r /etc/nv_tegra_release ]] && note "L4T: $(head -n 1 /etc/nv_tegra_release)"

# --- CUDA, cuDNN, TensorRT: the shared libraries ONNX Runtime's providers load
library() { # name, soname pattern
  local hit
  hit=$(ldconfig -p 2>/dev/null | grep -E "$2" | head -n 1 | sed 's/.*=> //')
  if [[ -n $hit ]]; then
    note "$1: $hit"
    found+=("$1")
  else
    note "$1: not found ($2 not in the linker cache)"
    missing+=("$1")
  fi
}
library "CUDA runtime" 'libcudart\.so\.12'
library "cuBLAS" 'libcublas\.so\.12'
library "cuDNN" 'libcudnn\.so\.9'
library "TensorRT" 'libnvinfer\.so\.10'
command -v nvcc >/dev/null 2>&1 && note "nvcc: $(nvcc --version | tail -n 1)"

# --- execution providers the installed binding can load
node --import tsx scripts/device-check-providers.ts >"$out/providers.json" 2>"$out/providers.err"
probe=$?
if ((probe != 0)); then
  note "provider probe failed (exit $probe): $(tail -n 1 "$out/providers.err")"
  echo "device-check: provider probe failed, see $out/providers.err; ${missing[*]:-}"
  exit 1
fi
loaded=$(node -e 'const r=require(process.argv[1]); console.log(r.providers.filter(p=>p.loads).map(p=>p.provider).join(" "))' "$out/providers.json")
options=$(node -e 'console.log(require(process.argv[1]).providerOptions)' "$out/providers.json")
# shellcheck disable=SC2016 # a JavaScript template literal, not a shell expansion
node -e 'const r=require(process.argv[1]); for (const p of r.providers) console.log(`device-check: provider ${p.provider}: ${p.loads ? "loads" : "does not load: " + p.error}`)' "$out/providers.json" | tee -a "$inventory"
note "binding provider options: $options"

gpu_providers=()
for p in $loaded; do [[ $p == cpu ]] || gpu_providers+=("$p"); done

# --- benchmarks where a GPU provider loads
benched=0
if ((${#gpu_providers[@]})); then
  if ! node bin/perceptd.js bench model --help 2>/dev/null | grep -q -- '--provider'; then
    note "perceptd bench model has no --provider option in this version: GPU timings not taken"
  else
    # every NanoDet model of the manifest: dense, pruned and quantized (QDQ INT8) alike
    mapfile -t models < <(node -e 'for (const n of Object.keys(require("./models/manifest.json").models)) if (n.startsWith("nanodet")) console.log(n)')
    for model in "${models[@]}"; do
      for p in "${gpu_providers[@]}"; do
        modes=(default)
        [[ $p == tensorrt ]] && modes=(fp32 fp16 int8)
        for mode in "${modes[@]}"; do
          [[ $mode == int8 && $model != *-int8* ]] && continue # INT8 needs a QDQ model's scales
          sets=()
          [[ $p == tensorrt ]] && sets=(--set "inference.trtFp16=$([[ $mode == fp16 ]] && echo true || echo false)" --set "inference.trtInt8=$([[ $mode == int8 ]] && echo true || echo false)" --set "inference.trtCacheDir=$out/trt-cache")
          name="bench-$model-$p-$mode"
          if node bin/perceptd.js bench model --models "$model" --provider "$p" --no-tfjs --json "${sets[@]}" >"$out/$name.json" 2>"$out/$name.err"; then
            note "bench $model on $p ($mode): $out/$name.json"
            benched=$((benched + 1))
          else
            note "bench $model on $p ($mode) failed: $(tail -n 1 "$out/$name.err")"
          fi
        done
      done
    done
  fi
  if node bin/perceptd.js soak --help >"$out/soak-help.txt" 2>&1; then
    # the bench soak config, on the first GPU provider that loads (CPU behind it, as on a vehicle)
    if node bin/perceptd.js soak --config config/bench-soak.yaml --duration 60s --out "$out/soak" \
      --set "inference.executionProviders=[${gpu_providers[0]},cpu]" --set "inference.trtCacheDir=$out/trt-cache" >"$out/soak.log" 2>&1; then
      note "soak, 60 s: $out/soak"
    else
      note "soak failed: $(tail -n 1 "$out/soak.log")"
    fi
  else
    note "perceptd soak: not in this version, skipped"
  fi
fi

# --- the last line, in words
join() { local IFS=$1; shift; local s="$*"; echo "${s//$IFS/$IFS }"; } # "a, b, c"
summary=()
if ((${#missing[@]})); then summary+=("${missing[0]}"); fi
((${#missing[@]} > 1)) && summary+=("also missing: $(join , "${missing[@]:1}")")
summary+=("onnxruntime-node loads: ${loaded:-nothing} (provider options: $options)")
if ((${#gpu_providers[@]})); then
  summary+=("$benched GPU benchmark(s) taken")
else
  summary+=("no GPU provider loads, nothing benchmarked")
fi
((${#found[@]})) && summary+=("found: $(join , "${found[@]}")")
line="$(join ';' "${summary[@]}") (details in $out)"
echo "$line" >>"$inventory"
echo "$line"
