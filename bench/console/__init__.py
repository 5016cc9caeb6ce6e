"""The console command and the text its tools print.

- ``command``: ``mlx-sgd-bench SUBCOMMAND``, a dispatcher to the suite's tools;
- ``oneline``: one line of stderr for a message that quotes user input;
- ``exit_codes``: the one table of exit statuses of every command.
"""
