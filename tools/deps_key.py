"""The dependency spec in setup.cfg, for the Makefile and CI.

    python tools/deps_key.py                  short hash of install_requires + extras + Python version
    python tools/deps_key.py --requirements   the requirement lines (core + every extra)

The shared virtualenv is keyed on the hash: the same spec reuses the environment, any change
of dependencies builds a new one.
"""
import configparser
import hashlib
import pathlib
import sys

cfg = configparser.ConfigParser()
cfg.read(pathlib.Path(__file__).resolve().parents[1] / "setup.cfg")
core = cfg.get("options", "install_requires")
extras = sorted(cfg.items("options.extras_require"))
if "--requirements" in sys.argv:
    lines = [core] + [v for _, v in extras]
    print("\n".join(x.strip() for block in lines for x in block.splitlines() if x.strip()))
else:
    spec = [core, sys.version.split()[0]] + [f"{k}={v}" for k, v in extras]
    print(hashlib.sha256("\n".join(spec).encode()).hexdigest()[:12])
