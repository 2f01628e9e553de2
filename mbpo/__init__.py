"""MBPO and SAC benchmark harness: one `python -m mbpo train ...` command is one run."""
