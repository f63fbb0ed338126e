"""The commands (``mcbench``, ``mcbench-leaderboard``, ``mcbench-report``, ``mcbench-sanity``, ``mcbench-tune``,
``python -m mcbench.commands.calibrate``): above the library, which never imports them."""
