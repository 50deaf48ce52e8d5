"""A seed means one output whether the fast path's kernels were just compiled or loaded from
numba's cache: a conversion at every weight precision, run in a process with an empty
NUMBA_CACHE_DIR and again in one that finds it filled, writes identical files.

(The int8 kernel once rounded its inputs with `np.rint` inside a function that inherited
fast-math from its caller; LLVM lowered that rounding one way when compiling and another in
the object code it cached. kernels.py's `_EXACT` and `_quantize` say how it is kept exact.)
"""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

PRECISIONS = ("float32", "bf16", "int8")

DRIVER = """
import sys
from audiovq.cli import main
src, out = sys.argv[1], sys.argv[2]
for p in {precisions!r}:
    main(["convert", "--src", src, "--speaker", "p225", "--out", f"{{out}}/{{p}}", "--precision", p,
          "--seed", "3", "-q"])
"""


def _source(path: pathlib.Path) -> None:
    """0.6 s of a vowel-like signal at 8 kHz: harmonics of 140 Hz under a moving envelope."""
    sr = 8000
    t = np.arange(int(0.6 * sr)) / sr
    f0 = 140 * (1 + 0.1 * np.sin(2 * np.pi * 2 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    y = sum(np.sin(k * phase) / k for k in range(1, 20)) * (0.3 + 0.2 * np.sin(2 * np.pi * 3 * t))
    y += 0.01 * np.random.default_rng(0).standard_normal(t.size)
    sf.write(path, (0.3 * y / np.abs(y).max()).astype(np.float32), sr)


@pytest.mark.slow
def test_conversion_is_the_same_with_fresh_and_cached_kernels(tmp_path):
    src = tmp_path / "src.wav"
    _source(src)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))
    driver = DRIVER.format(precisions=PRECISIONS)
    outputs = []
    for run in ("fresh", "cached"):
        out = tmp_path / run
        subprocess.run([sys.executable, "-c", driver, str(src), str(out)], env=env, check=True,
                       capture_output=True, text=True, timeout=600)
        outputs.append(out)
    index = list((tmp_path / "numba-cache").rglob("*.nbi"))
    assert index, "the first process left no kernels in the cache"
    for p in PRECISIONS:
        fresh = sorted((outputs[0] / p).glob("*.wav"))
        cached = sorted((outputs[1] / p).glob("*.wav"))
        assert [f.name for f in fresh] == [f.name for f in cached] and fresh
        for a, b in zip(fresh, cached):
            assert a.read_bytes() == b.read_bytes(), f"{p}: {a.name} differs between fresh and cached kernels"
