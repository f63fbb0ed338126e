"""``python -m mcbench.commands.report``: the same as ``mcbench-report``."""

from mcbench.commands.report.cli import main

main()
