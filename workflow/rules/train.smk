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
