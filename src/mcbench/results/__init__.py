"""What a run leaves behind: the CSV store, run identity, the declared row schema, sweep files and the
leaderboard's tables. Library code: never imports :mod:`mcbench.commands`."""
