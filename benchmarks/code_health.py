"""Code health figures of the tree: long functions, long modules, duplicated blocks.

Counts functions over 60 lines and modules over 400 lines in ``onnx_netadapt/``,
``onnx_netadapt_runners/``, ``benchmarks/`` and ``examples/``, and the pairs of duplicated blocks
the ``duplicates`` command finds over the whole repository (it must be on PATH; without it the
count is ``null``).

    python -m benchmarks.code_health --name before   # writes results/code_health/before.{md,json}
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "code_health"
FOLDERS = ("onnx_netadapt", "onnx_netadapt_runners", "benchmarks", "examples")
FUNCTION_LINES = 60
MODULE_LINES = 400


def python_files(repo: Path) -> list[Path]:
    """The Python files of the measured folders, sorted."""
    return sorted(path for folder in FOLDERS for path in (repo / folder).rglob("*.py"))


def long_functions(path: Path, repo: Path, limit: int = FUNCTION_LINES) -> list[dict]:
    """Functions and methods of ``path`` longer than ``limit`` lines (decorators not counted)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lines = node.end_lineno - node.lineno + 1
            if lines > limit:
                found.append(
                    {
                        "file": str(path.relative_to(repo)),
                        "function": node.name,
                        "line": node.lineno,
                        "lines": lines,
                    }
                )
    return found


def long_modules(paths: list[Path], repo: Path, limit: int = MODULE_LINES) -> list[dict]:
    """Modules longer than ``limit`` lines."""
    sizes = ((path, len(path.read_text().splitlines())) for path in paths)
    return [{"file": str(p.relative_to(repo)), "lines": n} for p, n in sizes if n > limit]


def duplicated_blocks(repo: Path) -> dict:
    """The ``duplicates`` command's pair count and rows over the repository."""
    command = shutil.which("duplicates")
    if command is None:
        return {"pairs": None, "rows": [], "note": "duplicates is not on PATH"}
    result = subprocess.run(
        [command, "--repo", str(repo), "--most", "200", "--seconds", "120"],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = result.stdout.splitlines()
    head = lines[0] if lines else ""
    match = re.match(r"(\d+) pairs", head)
    pairs = int(match.group(1)) if match else (0 if head.startswith("no duplicates") else None)
    rows = [line for line in lines if re.match(r"D\d+ ", line)]
    return {"pairs": pairs, "summary": head, "rows": rows}


def measure(repo: Path) -> dict:
    """All figures of the tree at ``repo``."""
    paths = python_files(repo)
    functions = [f for path in paths for f in long_functions(path, repo)]
    functions.sort(key=lambda f: -f["lines"])
    modules = sorted(long_modules(paths, repo), key=lambda m: -m["lines"])
    return {
        "function_limit": FUNCTION_LINES,
        "module_limit": MODULE_LINES,
        "folders": list(FOLDERS),
        "long_functions": functions,
        "long_modules": modules,
        "duplicates": duplicated_blocks(repo),
    }


def markdown(figures: dict, name: str) -> str:
    """The figures as a short markdown report."""
    dup = figures["duplicates"]
    lines = [
        f"# Code health: {name}",
        "",
        f"- functions over {figures['function_limit']} lines: {len(figures['long_functions'])}",
        f"- modules over {figures['module_limit']} lines: {len(figures['long_modules'])}",
        f"- duplicated block pairs (`duplicates --most 200`): {dup['pairs']}",
        "",
        "## Functions",
        "",
        "| lines | function | file:line |",
        "| ---: | --- | --- |",
    ]
    lines += [
        f"| {f['lines']} | `{f['function']}` | {f['file']}:{f['line']} |"
        for f in figures["long_functions"]
    ]
    lines += ["", "## Modules", "", "| lines | file |", "| ---: | --- |"]
    lines += [f"| {m['lines']} | {m['file']} |" for m in figures["long_modules"]]
    lines += ["", "## Duplicated blocks", "", dup.get("summary", dup.get("note", "")), ""]
    lines += [f"    {row}" for row in dup["rows"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="after", help="file stem of the report (before/after)")
    parser.add_argument("--repo", type=Path, default=REPO, help="tree to measure")
    parser.add_argument("--out", type=Path, default=OUT, help="folder of the reports")
    args = parser.parse_args(argv)
    figures = measure(args.repo.resolve())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(figures, indent=2) + "\n")
    (args.out / f"{args.name}.md").write_text(markdown(figures, args.name))
    print(markdown(figures, args.name).split("\n## ")[0])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
