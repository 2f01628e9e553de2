rule train:
    output:
        eval=f"{OUT}/runs/{{env}}/{{algo}}/{{variant}}/{{device}}/seed{{seed}}/eval.csv",
        train=f"{OUT}/runs/{{env}}/{{algo}}/{{variant}}/{{device}}/seed{{seed}}/train.csv",
        metadata=f"{OUT}/runs/{{env}}/{{algo}}/{{variant}}/{{device}}/seed{{seed}}/metadata.json",
    conda:
        "../envs/mbpo.yaml"
    log:
        f"{OUT}/logs/train/{{env}}/{{algo}}/{{variant}}/{{device}}/seed{{seed}}.log",
    benchmark:
        f"{OUT}/benchmarks/{{env}}/{{algo}}/{{variant}}/{{device}}/seed{{seed}}.tsv"
    params:
        python=python,
        args=train_arguments,
        out=run_folder,
    threads: train_threads
    group: train_group
    resources:
        runtime=train_runtime,
        mem_mb=train_mem_mb,
        gpu=train_gpu,
    shell:
        "{params.python} -m mbpo train {params.args:q} --threads {threads} --out {params.out:q} > {log:q} 2>&1"
