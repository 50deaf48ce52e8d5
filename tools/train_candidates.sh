#!/usr/bin/env bash
# Train demo-model candidates side by side, each for the same wall-clock budget, on one machine
# (a GPU runs several small models at once nearly as fast as one), then export each slim.
#
#   tools/train_candidates.sh OUT_DIR MINUTES NAME:"overrides" [NAME:"overrides" …]
#   e.g. tools/train_candidates.sh out 7 base:"" plain:"model.decoder.preemphasis=0 model.decoder.input_noise=0"
#
# Every candidate starts from the `demo` preset (configs/demo.yaml). One process builds and
# prepares the embedded corpus first, so the candidates only read it. Writes OUT_DIR/NAME.log
# (the training log) and OUT_DIR/NAME.pt (`audiovq export` of its last checkpoint).
set -uo pipefail
out=$1 minutes=$2
shift 2
PY=${PYTHON:-python3}
mkdir -p "$out"
"$PY" -c "from audiovq.config import load_config; from audiovq.corpus import ensure_prepared
ensure_prepared(load_config('vqvae', ['preset=demo']).data, progress=False)" > "$out/corpus.log" 2>&1 \
  || { tail -5 "$out/corpus.log"; exit 1; }
pids=()
for spec in "$@"; do
  name=${spec%%:*} overrides=${spec#*:}
  # shellcheck disable=SC2086  # overrides are separate words on purpose
  PYTHONUNBUFFERED=1 "$PY" recipes/vctk/train.py preset=demo train.run_dir="runs/cand-$name" \
    train.minutes="$minutes" $overrides > "$out/$name.log" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
for spec in "$@"; do
  name=${spec%%:*}
  last=$(ls -1 "runs/cand-$name"/checkpoints/step-*.pt 2>/dev/null | tail -1)
  "$PY" -m audiovq.cli export "$last" "$out/$name.pt" >> "$out/$name.log" 2>&1 || status=1
  grep -a "validation:" "$out/$name.log" | tail -2
  tail -c 300 "$out/$name.log" | tr '\r' '\n' | tail -2
done
exit $status
