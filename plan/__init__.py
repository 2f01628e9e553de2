"""The experiment plan: which runs an experiment config asks for, each with its identity (folder,
labels), its resolved `python -m mbpo train` config and arguments, and the resources it needs.
Built once from the config (`plan.experiment.runs`); the Snakefile's rules, the analysis and the
benchmark scripts look runs up in it."""
