"""``onnx-netadapt tasks``: the registered tasks (built-ins and plugins), and broken plugins
with their error."""

from __future__ import annotations

import json

import click


@click.command("tasks")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def tasks_cmd(as_json: bool) -> None:
    """List the tasks --task accepts: what each trains and scores (broken plugins: why)."""
    from onnx_netadapt.tasks.registry import discover

    rows = []
    for name, info in sorted(discover().items()):
        task = info.task
        rows.append(
            {
                "name": name,
                "target": info.target,
                "description": task.description if task else "",
                "score": task.score_name if task else "",
                "unit": task.score_unit if task else "",
                "loaded": task is not None,
                "error": info.error,
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    for row in rows:
        if row["loaded"]:
            click.echo(f"{row['name']:<15} {row['description']} (score: {row['score']})")
        else:
            click.echo(f"{row['name']:<15} failed to load: {row['error']}")
            click.echo(f"{'':<15} fix: reinstall the package that provides {row['target']}")
