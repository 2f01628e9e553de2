import sys

from snakemake.exceptions import WorkflowError
from snakemake.settings.types import DeploymentMethod

from plan import identity
from plan.experiment import DEFAULT_OUTPUT, ExperimentError, jobs, lookup, runs
from plan.resources import job_resources, run_resources


# tables, figures and the paper's figures take seconds: on a cluster they run where snakemake runs
localrules:
    aggregate,
    figures,
    paper,
    crosscheck,


FIGURES = ["sample_efficiency", "rollout_ablation", "wallclock"]
OUT = config.get("output", DEFAULT_OUTPUT)  # every file the workflow writes lies under it

try:
    RUNS = runs(config)
except ExperimentError as exc:
    raise WorkflowError(f"invalid config: {exc}")

RUN_BY_KEY = lookup(RUNS)  # the plan, built once: rules look their run up by its wildcards
JOBS = jobs(config, RUNS)  # the processes: one run, or several seeds in lockstep (seeds_per_job)
JOB_BY_KEY = {job.key: job for job in JOBS if job.lockstep}
JOB_OF_RUN = {run.key: job for job in JOBS for run in job.runs}
DEVICES = sorted({run.device for run in RUNS})


wildcard_constraints:
    **identity.PATTERNS,
    seeds=identity.JOB_PATTERNS["seeds"],


def run_metadata():
    """Every job's completion marker: a run's metadata.json, or a lockstep job's record."""
    return [job.record for job in JOBS]


def markers(paths):
    """The completion markers of the jobs that train the runs in `paths`."""
    by_path = {run.path: run for run in RUNS}
    return sorted({JOB_OF_RUN[by_path[path].key].record for path in paths})


def crosscheck_runs():
    """The runs the SAC cross-check compares: this SAC's and SB3's, at one update per step."""
    return [run.path for run in RUNS if (run.algo, run.variant) in (("sac", "utd1"), ("sb3_sac", "utd1"))]


def paper_envs():
    """The envs the paper figure draws a panel for (analysis.paper also draws each alone)."""
    return sorted({run.env for run in RUNS if run.algo in ("mbpo", "sac", "sac_asymptote")})


def run_dirs():
    return [run.path for run in RUNS]


def figure_names():
    return FIGURES + (["devices"] if len(DEVICES) > 1 else [])


def final_outputs():
    return [
        f"{OUT}/tables/summary.csv",
        f"{OUT}/tables/summary.md",
        f"{OUT}/tables/summary.tex",
        *expand(f"{OUT}/figures/{{name}}.{{ext}}", name=figure_names(), ext=["png", "pdf"]),
    ]


def python(wildcards):
    """The interpreter of a job: the conda env's under --sdm conda, else the one running snakemake."""
    if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method:
        return "python"
    return sys.executable


def planned_run(wildcards):
    return RUN_BY_KEY[(wildcards.env, wildcards.algo, wildcards.variant, wildcards.device, int(wildcards.seed))]


def train_arguments(wildcards):
    return list(planned_run(wildcards).args)


def run_folder(wildcards):
    return planned_run(wildcards).path


_RESOURCES = {}


def train_resources(wildcards):
    """What a run asks a cluster for (plan/resources.py: runtime from its budget and a measured
    cost per env step, memory from its buffers, one GPU for CUDA runs), once per run."""
    run = planned_run(wildcards)
    if run.key not in _RESOURCES:
        _RESOURCES[run.key] = run_resources(run.config, run.sizes)
    return _RESOURCES[run.key]


def train_runtime(wildcards):
    return train_resources(wildcards).runtime


def train_mem_mb(wildcards):
    return train_resources(wildcards).mem_mb


def train_gpu(wildcards):
    return train_resources(wildcards).gpu


def train_threads(wildcards):
    return train_resources(wildcards).threads


def planned_job(wildcards):
    return JOB_BY_KEY[(wildcards.env, wildcards.algo, wildcards.variant, wildcards.device, wildcards.seeds)]


def job_arguments(wildcards):
    return list(planned_job(wildcards).args)


def job_out(wildcards):
    return planned_job(wildcards).out


def job_runs(wildcards):
    return [run.path for run in planned_job(wildcards).runs]


def job_resources_of(wildcards):
    """A lockstep job's resources: its seeds' buffers, and their runtimes one after another."""
    job = planned_job(wildcards)
    if job.key not in _RESOURCES:
        _RESOURCES[job.key] = job_resources(job.run.config, job.run.sizes, len(job.runs))
    return _RESOURCES[job.key]



def analysis_settings(wildcards):
    a = config["analysis"]
    return (
        f"--budget {a['budget']} --threshold {a['threshold']} --grid {a['grid']} "
        f"--bootstrap-samples {a['bootstrap_samples']} --confidence {a['confidence']} --seed {a['seed']}"
    )
