"""Which package of audiovq imports which: every import statement (module level and inside
functions) resolved to its package, counted per edge, with the edges that run "upwards"
(against the layering below) and the import circles between packages.

    python tools/import_graph.py            # the edges, one a line: FROM -> TO  count
    python tools/import_graph.py --files    # also the importing files of each edge
    python tools/import_graph.py --root OTHER/audiovq   # another checkout's (e.g. an older commit's)

Packages: the sub-packages of audiovq (nn with nn/decoders, generate with its renderers, data,
evaluate, analysis), "ground" for the ground floor (audio, config, errors, …: GROUND) and
"top" for the other modules directly in audiovq/ (the commands' glue). Layering, lower
first: ground < data < nn < generate < top; evaluate and analysis sit beside top.
"""
from __future__ import annotations

import argparse
import ast
import pathlib
import sys
from collections import defaultdict

ROOT = pathlib.Path(__file__).resolve().parents[1] / "audiovq"
PACKAGES = ("nn", "generate", "data", "evaluate", "analysis")
GROUND = ("audio", "config", "checkpoint", "atomic", "errors", "filelock", "devices")


def package_of(module: str) -> str:
    """'audiovq.nn.decoders.base' → 'nn'; 'audiovq.audio' → 'ground'; 'audiovq.convert' → 'top'."""
    rest = module.split(".", 1)[1] if "." in module else ""
    for p in PACKAGES:
        if rest == p or rest.startswith(p + "."):
            return p
    return "ground" if rest.split(".")[0] in GROUND else "top"


def module_of(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: pathlib.Path) -> list[str]:
    """The audiovq modules a file imports (absolute names), wherever the import sits."""
    here = module_of(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names if a.name.startswith("audiovq")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.startswith("audiovq"):
                # `from . import x`: x may be a module of the package
                out += [name] if node.module else [f"{name}.{a.name}" for a in node.names]
    return out


def graph() -> dict[tuple[str, str], list[str]]:
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(ROOT.rglob("*.py")):
        src = package_of(module_of(path))
        for name in imports(path):
            dst = package_of(name)
            if dst != src:
                edges[src, dst].append(str(path.relative_to(ROOT.parent)))
    return edges


def circles(edges) -> list[tuple[str, str]]:
    return sorted({tuple(sorted((a, b))) for a, b in edges if (b, a) in edges})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", action="store_true", help="list the importing files of each edge")
    ap.add_argument("--root", help="the audiovq package folder to read (default: this checkout's)")
    a = ap.parse_args()
    global ROOT
    ROOT = pathlib.Path(a.root).resolve() if a.root else ROOT
    edges = graph()
    for (src, dst), files in sorted(edges.items()):
        print(f"{src:>9} -> {dst:<9} {len(files):>3} import statements in {len(set(files))} files")
        if a.files:
            for f in sorted(set(files)):
                print(f"{'':>22}{f}")
    loops = circles(edges)
    print("circles: " + (", ".join(f"{a} <-> {b}" for a, b in loops) or "none"))
    rank = {"ground": 0, "data": 1, "nn": 2, "generate": 3, "top": 4, "evaluate": 4, "analysis": 4}
    up = sorted((s, d) for s, d in edges if rank[d] > rank[s])
    print("upwards (a lower package importing a higher one): "
          + (", ".join(f"{s} -> {d} ({len(edges[s, d])})" for s, d in up) or "none"))
    sys.exit(0)


if __name__ == "__main__":
    main()
