"""Exit 0 if `import audiovq` in this interpreter resolves to the clone this script is in.

The shared virtualenv (see Makefile) is reused by every clone on the machine; the editable
install is re-pointed at the clone that runs `make` when it points elsewhere.
"""
import importlib.util
import pathlib
import sys

here = pathlib.Path(__file__).resolve().parents[1]
spec = importlib.util.find_spec("audiovq")
ok = spec is not None and spec.origin and pathlib.Path(spec.origin).resolve().parent == here / "audiovq"
sys.exit(0 if ok else 1)
