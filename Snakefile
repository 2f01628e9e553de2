# Wiring only: which runs exist and where their files go. One rule = one `python -m mbpo train`.
# (The pipeline issue grows this into the full experiment: seeds, rollout lengths, devices,
# aggregation, figures and the report.)
import sys

configfile: "config/config.yaml"


PYTHON = sys.executable
RUN = "results/runs/{env}/{algo}/{preset}/cpu/seed{seed}"


rule all:
    input:
        expand(RUN + "/metadata.json", env=config["env"], algo=config["algo"], preset=config["preset"], seed=config["seeds"]),


rule train:
    output:
        eval=RUN + "/eval.csv",
        train=RUN + "/train.csv",
        metadata=RUN + "/metadata.json",
    log:
        "results/logs/{env}/{algo}/{preset}/cpu/seed{seed}.log",
    benchmark:
        "results/benchmarks/{env}/{algo}/{preset}/cpu/seed{seed}.tsv"
    params:
        python=PYTHON,
        steps=config["total_steps"],
        out=lambda wildcards, output: str(Path(output.metadata).parent),
    threads: 1
    shell:
        "{params.python} -m mbpo train --algo {wildcards.algo} --env {wildcards.env} --preset {wildcards.preset} "
        "--seed {wildcards.seed} --total-steps {params.steps} --device cpu --threads {threads} "
        "--out {params.out} --overwrite > {log} 2>&1"
