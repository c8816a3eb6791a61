#!/usr/bin/env bash
# Build FlashAttention-3's Hopper forward kernels (head dim 128, bf16 and FP8 e4m3) in place, for ditto's
# optional "fa3" attention backend (src/ditto/layers/attention_fa3.py). Needs an H100/H200 machine's CUDA
# toolkit (nvcc >= 12.3) and the PyTorch it will run with; no FA3 wheel exists for torch 2.11 + CUDA 13.
#
#   scripts/build_fa3.sh [SRC]     # SRC: a flash-attention checkout with csrc/cutlass filled in
#                                  # (default: clone FA3_COMMIT with its cutlass submodule into .cache/)
#   export PYTHONPATH=SRC/hopper:$PYTHONPATH   # then ditto finds `flash_attn_interface`
#
# Only what ditto calls is built (forward, fixed length, no paging/splits/softcap/local windows, head dim
# 128): three files, a few minutes of nvcc on 16 cores instead of the hours of the full build.
set -euo pipefail
FA3_COMMIT=${FA3_COMMIT:-0251105a2fb19d2957484b7f023cd8c115286ced}
SRC=${1:-.cache/flash-attention}
if [ ! -d "$SRC/hopper" ]; then
    git clone https://github.com/Dao-AILab/flash-attention "$SRC"
    git -C "$SRC" checkout "$FA3_COMMIT"
    git -C "$SRC" submodule update --init csrc/cutlass
fi
[ -d "$SRC/csrc/cutlass/include/cute" ] || { echo "build_fa3: $SRC/csrc/cutlass/include is empty" >&2; exit 2; }
for feature in BACKWARD SPLIT PAGEDKV APPENDKV LOCAL SOFTCAP PACKGQA FP16 VARLEN CLUSTER \
    HDIM64 HDIM96 HDIM192 HDIM256 SM80 HDIMDIFF64 HDIMDIFF192; do
    export "FLASH_ATTENTION_DISABLE_$feature=TRUE"
done
export FLASH_ATTENTION_DISABLE_FP8=${FA3_NO_FP8:-FALSE}
export MAX_JOBS=${MAX_JOBS:-4} NVCC_THREADS=${NVCC_THREADS:-4}
cd "$SRC/hopper"
python3 setup.py build_ext --inplace
python3 -c "import flash_attn_interface; print('FA3 built:', flash_attn_interface.__file__)"
