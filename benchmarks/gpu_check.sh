#!/usr/bin/env bash
# The GPU check of issue 8, prepared to run as it is on a CUDA machine (no network needed).
#
#   bash benchmarks/gpu_check.sh                 # every stage, ~10-12 min on an H100/H200
#   bash benchmarks/gpu_check.sh env bench anchor            # ~4-5 min  } the same, in two calls
#   bash benchmarks/gpu_check.sh compile pipeline            # ~5-6 min  } on one warm machine
#
# Stages (each has its own time limit and prints as it goes, so a cut-off run still reports):
#   env       GPU, torch/timm versions, missing modules
#   test      pytest -m gpu tests/vision
#   bench     bench_vision.py --device cuda: the 7 families' default archs at 320 px, eager, default batch
#   anchor    ../shared/bench/plain_timm_anchor.py: plain timm loop, convnext_tiny 320 px, batch 64/256, eager/compiled
#   compile   bench_vision.py --compile yes for convnext, densenet, resnet (1st step s = compile time)
#   pipeline  real `train` fed from the cache vs model-only, convnext and densenet (eager, then convnext compiled)
#
# Uses the machine's own torch (the plugin only needs torch>=2.2); radtool and the plugin are taken
# from this tree through PYTHONPATH, so nothing is installed. Output also goes to $OUT/gpu_check.log
# when $OUT is set.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD/src:$PWD/plugins/vision/src:$PWD/tests/vision${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
LOG=${OUT:+$OUT/gpu_check.log}
STAGES=${*:-env test bench anchor compile pipeline}
ANCHOR=../shared/bench/plain_timm_anchor.py

run() {  # run LIMIT_S CMD...: one stage step, time-limited, timed
  local limit=$1; shift
  echo "\$ $*"
  local t0=$SECONDS
  timeout --signal=INT "$limit" "$@"
  local rc=$?
  echo "[rc=$rc, $((SECONDS - t0)) s]"
  echo
}

main() {
  echo "gpu_check: stages: $STAGES; $(date -u +%FT%TZ); commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  for stage in $STAGES; do
    echo "=== $stage ==="
    case $stage in
      env)
        run 30 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
        run 60 "$PY" -c "
import importlib, torch, timm
print('torch', torch.__version__, 'cuda', torch.version.cuda, 'timm', timm.__version__)
print('gpu', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'NONE')
missing = [m for m in ('numpy', 'PIL', 'pydicom', 'matplotlib', 'huggingface_hub', 'safetensors', 'typer', 'rich', 'pytest', 'pytorch_grad_cam') if importlib.util.find_spec(m) is None]
print('missing modules:', missing or 'none')
" ;;
      test)
        run 240 "$PY" -m pytest -q -p no:cacheprovider -m gpu tests/vision ;;
      bench)
        run 300 "$PY" benchmarks/bench_vision.py --device cuda --steps 10 --no-pipeline ;;
      anchor)
        if [ -f "$ANCHOR" ]; then run 300 "$PY" "$ANCHOR" --arch convnext_tiny --size 320 --batch 64,256 --compile both
        else echo "no $ANCHOR beside the repository; skipped"; fi ;;
      compile)
        run 360 "$PY" benchmarks/bench_vision.py --device cuda --steps 10 --plugins convnext,densenet,resnet \
            --compile yes --no-pipeline ;;
      pipeline)
        run 300 "$PY" benchmarks/bench_vision.py --device cuda --plugins "" --pipeline-plugins convnext,densenet \
            --pipeline-images 2048
        run 240 "$PY" benchmarks/bench_vision.py --device cuda --plugins "" --pipeline-plugins convnext \
            --pipeline-images 2048 --pipeline-compile ;;
      *) echo "unknown stage $stage (env test bench anchor compile pipeline)" ;;
    esac
  done
}

if [ -n "$LOG" ]; then main 2>&1 | tee "$LOG"; else main 2>&1; fi
