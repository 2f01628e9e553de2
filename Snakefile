# Wiring only: which runs exist, where their files go, and how tables, figures and the report
# are made from them. The logic lives in analysis/ (experiment.py decides the runs and their
# `python -m mbpo train` arguments); threads and resources come from profiles/default.
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")


from plan.experiment import ExperimentError, check_schema, check_yaml, numbers_from_command_line

# the default experiment lives with the workflow, whatever --directory is
DEFAULT_CONFIG = Path(workflow.basedir) / "config" / "config.yaml"
try:  # snakemake's own loader would not say which file, nor where in it, and keeps the last of a key given twice
    for path in [DEFAULT_CONFIG, *workflow.config_settings.configfiles]:
        check_yaml(path)
except ExperimentError as exc:
    raise WorkflowError(f"invalid config: {exc}")


configfile: DEFAULT_CONFIG


config.update(numbers_from_command_line(config))  # --config seeds=[0,1] arrives as strings
try:
    check_schema(config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml")
except ExperimentError as exc:
    raise WorkflowError(f"invalid config: {exc}")
validate(config, "workflow/schemas/config.schema.yaml")  # fills the schema's defaults


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/analysis.smk"


rule all:
    input:
        final_outputs(),
    default_target: True
