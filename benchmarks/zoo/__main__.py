"""``python -m benchmarks.zoo``: see the package docstring."""

from benchmarks.zoo.cli import main

main()
