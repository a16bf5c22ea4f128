#!/usr/bin/env bash
# Train emo-demo on a lent GPU machine that has PyTorch but neither PyAV nor emo installed,
# from data prepared on another machine (examples/train_demo.py --stop-after prepare, then
# examples/training/pack_prepared.py pack).
#
#   bash examples/training/train_demo_gpu.sh BUNDLE WHEELS MODE SECONDS OUT
#
# BUNDLE   the packed data set, with the run's record.json beside its index
# WHEELS   a folder with the wheels of hatchling and trove-classifiers (emo's build
#          backend, to install emo without a package index)
# MODE     smoke (a few clips, a few steps: does every phase run on this device?) or full
# SECONDS  --time-budget of train_demo.py (full only)
# OUT      where the finished model, the record and the logs are written, as .tar files in
#          15 MiB parts (model.tar.aa, .ab, ...; join them with cat)
set -euo pipefail
bundle=$1 wheels=$2 mode=$3 seconds=$4 out=$5
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --find-links "$wheels" --no-deps hatchling trove-classifiers
python3 -m pip install -q --no-deps --no-build-isolation .
python3 -c "import torch, emo; print('torch', torch.__version__, torch.cuda.get_device_name(0), 'emo', emo.__version__)"
run=/tmp/emo-demo-$mode
rm -rf "$run" && mkdir -p "$run"
cp "$bundle/record.json" "$run/record.json"
if [ "$mode" = smoke ]; then
    python3 examples/training/pack_prepared.py unpack "$bundle" "$run/data" --limit 12
    python3 examples/train_demo.py --out "$run" --device cuda --quick --time-budget 40
    exit 0
fi
python3 examples/training/pack_prepared.py unpack "$bundle" "$run/data"
# whatever happens to the run, what it wrote comes back
timeout "$((${seconds%.*} + 20))" python3 examples/train_demo.py --out "$run" --device cuda ${EXTRA:-} \
    --time-budget "$seconds" 2>&1 | tee "$run/train.log" || echo "train_demo.py failed"
cd "$run"
parts=()
for p in emo-demo record.json train.log vae/training.json vae_sharp/training.json \
    stage{1,2,3}/metrics.jsonl stage{1,2,3}/config.json; do
    [ -e "$p" ] && parts+=("$p")
done
# in parts of 15 MiB (a lent machine returns files of at most 16 MiB; the 96 px model is
# 22 MB): cat model.tar.* | tar -xf -
tar -cf - "${parts[@]}" | split -b 15M - "$out/model.tar."
# the newest checkpoint of the last stage reached: a later session can continue from it
last=$(ls -d stage*/checkpoints 2>/dev/null | tail -1 || true)
[ -n "$last" ] && tar -cf - "$last" | split -b 15M - "$out/checkpoint.tar."
ls -la "$out"
