#!/usr/bin/env bash
# Check audiovq on a CUDA GPU in one command, and print one table:
#   - the tests marked `cuda` (tests/test_cuda.py: AMP step vs float32, DDP over nccl,
#     CUDA generation vs the CPU, CUDA-graph samples vs the plain loop);
#   - the tiny preset trained for 3 minutes with AMP (steps/s, NLL, codebook usage);
#   - tools/bench_train.py and tools/bench_generate.py on the GPU;
#   - `audiovq convert --device cuda` on a few utterances of the embedded corpus (RTF).
# About 5 minutes on one GPU once the embedded corpus is built (the first run builds it in
# data/, or $AUDIOVQ_DATA). Each stage has a time limit, and stages are cut short or skipped
# so that the whole check ends within 8 minutes.
#
#     tools/gpu_check.sh             # PYTHON=/path/to/python to choose the interpreter
#
# Without a CUDA device it says so and exits 0. Exit status 1 when a stage failed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=$(command -v python3)

probe=$("$PY" -c 'import torch
print(torch.__version__, torch.version.cuda or "none")
print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")')
read -r torch_version cuda_version <<<"$(sed -n 1p <<<"$probe")"
device=$(sed -n 2p <<<"$probe")
if [ -z "$device" ]; then
    echo "no CUDA device: nothing to check (torch $torch_version, CUDA build $cuda_version, $PY)"
    exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/audiovq-gpu-check.XXXXXX")
start=$SECONDS
deadline=$((SECONDS + 460))  # 8 minutes, less the probe and the kill grace of a timed-out stage
names=() results=() failed=0

# stage NAME LIMIT COMMAND…: run it with a time limit (cut to what is left of the 8 minutes),
# output in $work/NAME.log
stage() {
    local name=$1 limit=$2 rc=0 t0=$SECONDS left=$((deadline - SECONDS))
    shift 2
    took=0
    if [ "$left" -lt 15 ]; then
        echo "skipped: the 8 minutes were spent" >"$work/$name.log"
        return 1
    fi
    [ "$limit" -le "$left" ] || limit=$left
    echo "== $name (at most ${limit} s; log $work/$name.log)"
    timeout --kill-after=10 "$limit" "$@" >"$work/$name.log" 2>&1 || rc=$?
    took=$((SECONDS - t0))
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        echo "timed out after ${limit} s" >>"$work/$name.log"
    fi
    if [ "$rc" -ne 0 ]; then
        tail -n 15 "$work/$name.log" | sed 's/^/   | /'
    fi
    return "$rc"
}

record() {  # NAME RESULT
    names+=("$1")
    results+=("$2")
}

fail() {  # NAME: the stage's last line
    failed=1
    record "$1" "FAILED after ${took} s: $(grep -v '^\s*$' "$work/$1.log" | tail -n 1 | cut -c1-100)"
}

# 1. the tests marked cuda (tests/test_cuda.py, and any added elsewhere)
if stage tests 150 "$PY" -m pytest -m cuda tests/ -q -p no:cacheprovider; then
    record tests "$(tail -n 1 "$work/tests.log")"
else
    fail tests
fi

# 2. the tiny preset's embedded corpus (cached after the first run), 3. 3 minutes of training
tiny=(preset=tiny train.device=cuda)
if stage corpus 180 "$PY" -c 'import sys
from audiovq.config import load_config
from audiovq.corpus import ensure_prepared
m = ensure_prepared(load_config("vqvae", sys.argv[1:]).data, progress=False)
print(f"{len(m.utterances)} utterances of {len(m.speakers)} speakers in {m.root}")' "${tiny[@]}"; then
    record corpus "$(tail -n 1 "$work/corpus.log") (${took} s)"
else
    fail corpus
fi

# 3 minutes, or less where the corpus took long: start-up and the stages after it need ~170 s
run="$work/tiny"
train_s=$((deadline - SECONDS - 170))
[ "$train_s" -le 180 ] || train_s=180
[ "$train_s" -ge 60 ] || train_s=60
row="train tiny $((train_s / 60)) min $((train_s % 60)) s AMP"
row=${row/ 0 s/}
if stage train $((train_s + 60)) "$PY" recipes/vctk/train.py "${tiny[@]}" "train.minutes=$(awk "BEGIN {print $train_s / 60}")" \
        train.amp=true "train.run_dir=$run" train.val_every=0 train.listen=false train.log_every=10; then
    if summary=$("$PY" - "$run/tb" 2>>"$work/train.log" <<'EOF'
import sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
tb = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0})
tb.Reload()
if "train/loss" not in tb.Tags()["scalars"]:
    print("no training scalars were logged")
    sys.exit(1)
def last(tag, n=10):  # mean of the last n logged values (every 10 steps)
    values = [e.value for e in tb.Scalars(f"train/{tag}")][-n:]
    return sum(values) / len(values)
steps = tb.Scalars("train/loss")[-1].step
print(f"{steps} steps, {last('steps_per_s'):.1f} steps/s, NLL {last('nll'):.3f} nats, "
      f"codebook usage {100 * last('usage'):.0f} % (training batches, last 100 steps)")
EOF
    ); then
        record "$row" "$summary"
    else
        record "$row" "FAILED: $(grep -o 'stopped at step [0-9]*' "$work/train.log"), $summary"
        failed=1
    fi
else
    fail train
fi

# 4. training throughput, 5. generation speed
if stage bench_train 90 "$PY" tools/bench_train.py --device cuda --steps 5; then
    record bench_train "$(awk 'NF == 5 && ($1 == "tiny" || $1 == "paper") {printf "%s%s %s audio s/s", sep, $1, $5; sep = ", "}' \
        "$work/bench_train.log") ($(sed -n 1p "$work/bench_train.log" | sed 's/.*AMP/AMP/'))"
else
    fail bench_train
fi

if stage bench_generate 90 "$PY" tools/bench_generate.py --device cuda --seconds 1 --plain 500; then
    record bench_generate "$(awk 'NF == 9 && ($1 == "1" || $1 == "16") {printf "%sbatch %s: graph %s S/s (RTF %s), plain %s S/s, %s", \
        sep, $1, $3, $4, $6, $9; sep = "; "}' "$work/bench_generate.log")"
else
    fail bench_generate
fi

# 6. conversion on the GPU with the model just trained: four test utterances → one speaker
if stage pick 60 "$PY" - "$run" "$work/picked.txt" <<'EOF'
import sys
from audiovq.data.manifest import Manifest
from audiovq.models import load_vqvae
m = load_vqvae(sys.argv[1])
corpus = Manifest.load(m.extra["corpus"])
lines = [str(corpus.audio_path(u)) for u in (corpus.split("test") or corpus.utterances)[:4]]
with open(sys.argv[2], "w") as f:  # the sources, then the target speaker
    f.write("\n".join(lines + [m.speakers[0]["id"]]) + "\n")
EOF
then
    mapfile -t picked <"$work/picked.txt"
    sources=()
    for f in "${picked[@]:0:${#picked[@]}-1}"; do sources+=(--src "$f"); done
    if stage convert 90 "$PY" -m audiovq.cli convert --device cuda --checkpoint "$run" "${sources[@]}" \
            --speaker "${picked[-1]}" --out "$work/converted" -q; then
        record "convert --device cuda" "$(grep -o '[0-9]* conversion(s), RTF [0-9.]*' "$work/convert.log")"
    else
        fail convert
    fi
else
    fail pick
fi

echo
printf '%-26s %s\n' "device" "$device (torch $torch_version, CUDA $cuda_version)"
for i in "${!names[@]}"; do
    printf '%-26s %s\n' "${names[$i]}" "${results[$i]}"
done
printf '%-26s %s\n' "total" "$((SECONDS - start)) s; logs and outputs in $work"
exit "$failed"
