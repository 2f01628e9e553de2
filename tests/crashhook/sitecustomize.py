"""Crash and fault injection for trainings started by a pipeline (tests/test_workflow.py): with
this folder on PYTHONPATH and MBPO_CRASHPOINT="PHASE MODE N" in the environment, every
`python -m mbpo train` process crashes as `tests/crashpoints.py PHASE MODE N` makes it; with
MBPO_FAULT=NAME, it runs with `tests/faults.py`'s fault NAME. Other processes are untouched."""

import os
import sys

_spec = os.environ.get("MBPO_CRASHPOINT")
if _spec and sys.argv[1:2] == ["train"]:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import crashpoints

    _phase, _mode, _n = _spec.split()
    crashpoints.install(_phase, crashpoints.Injector(_mode, int(_n)))

_fault = os.environ.get("MBPO_FAULT")
if _fault and sys.argv[1:2] == ["train"]:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import faults

    faults.FAULTS[_fault]()
