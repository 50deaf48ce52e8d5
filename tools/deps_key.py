"""Print a short hash of the dependency spec in setup.cfg (install_requires + extras).

The Makefile and CI key the shared virtualenv on it: the same spec reuses the environment,
any change of dependencies builds a new one.
"""
import configparser
import hashlib
import pathlib
import sys

cfg = configparser.ConfigParser()
cfg.read(pathlib.Path(__file__).resolve().parents[1] / "setup.cfg")
spec = [cfg.get("options", "install_requires"), sys.version.split()[0]]
spec += [f"{k}={v}" for k, v in sorted(cfg.items("options.extras_require"))]
print(hashlib.sha256("\n".join(spec).encode()).hexdigest()[:12])
