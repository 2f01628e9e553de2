rule train:
    output:
        eval=identity.wildcards(identity.RUN_DIR, OUT, "eval.csv"),
        train=identity.wildcards(identity.RUN_DIR, OUT, "train.csv"),
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
        "{params.python} -m mbpo train {params.args:q} --threads {threads} --out {params.out:q} > {log:q} 2>&1"
