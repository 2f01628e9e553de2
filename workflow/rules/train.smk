# A run's only declared output is its completion marker, metadata.json (which records the size,
# rows and checksum of each of its CSVs, verified by every reader): Snakemake deletes a job's
# declared outputs before it runs the job again, and a run killed while it was being committed
# is completed from its other files (mbpo/record.py) if they are still there.
rule train:
    output:
        metadata=identity.wildcards(identity.RUN_DIR, OUT, "metadata.json"),
    conda:
        "../envs/mbpo.yaml"
    log:
        identity.wildcards(identity.LOG, OUT),
    benchmark:
        identity.wildcards(identity.BENCHMARK, OUT),
    params:
        python=python,
        args=train_arguments,
        out=run_folder,
    threads: train_threads
    resources:
        runtime=train_runtime,
        mem_mb=train_mem_mb,
        gpu=train_gpu,
    shell:
        "{params.python:q} -m mbpo train {params.args:q} --threads {threads} --skip-complete --out {params.out:q} > {log:q} 2>&1"


# Several seeds of a group in one process (`seeds_per_job`): each seed's folder is what its run
# alone writes; the job's declared output is a record of its runs (plan/jobs.py), so a failed
# job loses its record only, never a finished seed's folder, and a re-run trains what is left.
rule train_seeds:
    output:
        record=identity.job_wildcards(identity.JOB_RECORD, OUT),
    conda:
        "../envs/mbpo.yaml"
    log:
        identity.job_wildcards(identity.JOB_LOG, OUT),
    benchmark:
        identity.job_wildcards(identity.JOB_BENCHMARK, OUT),
    params:
        python=python,
        args=job_arguments,
        out=job_out,
        runs=job_runs,
    threads: lambda wildcards: job_resources_of(wildcards).threads
    resources:
        runtime=lambda wildcards: job_resources_of(wildcards).runtime,
        mem_mb=lambda wildcards: job_resources_of(wildcards).mem_mb,
        gpu=lambda wildcards: job_resources_of(wildcards).gpu,
    shell:
        "{params.python:q} -m mbpo train {params.args:q} --threads {threads} --skip-complete --out {params.out:q} > {log:q} 2>&1 "
        "&& {params.python:q} -m plan.jobs {output.record:q} {params.runs:q} >> {log:q} 2>&1"
