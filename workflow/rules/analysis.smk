rule aggregate:
    input:
        run_metadata(),
    output:
        summary=report(f"{OUT}/tables/summary.csv", caption="../report/summary.rst", category="Tables"),
        markdown=f"{OUT}/tables/summary.md",
        latex=f"{OUT}/tables/summary.tex",
        curves=f"{OUT}/tables/curves.csv",
        evaluations=f"{OUT}/tables/evaluations.csv",
    conda:
        "../envs/mbpo.yaml"
    log:
        f"{OUT}/logs/aggregate.log",
    params:
        python=python,
        runs=run_dirs(),
        tables=lambda wildcards, output: Path(output.summary).parent,
        runs_root=lambda wildcards, output: Path(output.summary).parent.parent / "runs",
        benchmarks_root=lambda wildcards, output: Path(output.summary).parent.parent / "benchmarks",
        settings=analysis_settings,
    shell:
        "{params.python:q} -m analysis.aggregate --runs {params.runs:q} --out {params.tables:q} --runs-root {params.runs_root:q} --benchmarks-root {params.benchmarks_root:q} {params.settings} > {log:q} 2>&1"


rule figures:
    input:
        summary=f"{OUT}/tables/summary.csv",
        curves=f"{OUT}/tables/curves.csv",
        evaluations=f"{OUT}/tables/evaluations.csv",
    output:
        report(
            expand(f"{OUT}/figures/{{name}}.png", name=figure_names()),
            caption="../report/figures.rst",
            category="Figures",
        ),
        expand(f"{OUT}/figures/{{name}}.pdf", name=figure_names()),
    conda:
        "../envs/mbpo.yaml"
    log:
        f"{OUT}/logs/figures.log",
    params:
        python=python,
        tables=lambda wildcards, input: Path(input.summary).parent,
        figures=lambda wildcards, output: Path(output[0]).parent,
    shell:
        "{params.python:q} -m analysis.figures --tables {params.tables:q} --out {params.figures:q} > {log:q} 2>&1"


rule paper_figures:
    input:
        expand(f"{OUT}/figures/paper_{{name}}.{{ext}}", name=["comparison", "ablation"], ext=["png", "pdf"]),
        expand(f"{OUT}/tables/paper_{{name}}.md", name=["returns", "seeds"]),


rule paper:
    input:
        run_metadata(),
    output:
        comparison=report(f"{OUT}/figures/paper_comparison.png", caption="../report/paper.rst", category="Paper"),
        ablation=report(f"{OUT}/figures/paper_ablation.png", caption="../report/paper_ablation.rst", category="Paper"),
        pdfs=expand(f"{OUT}/figures/paper_{{name}}.pdf", name=["comparison", "ablation"]),
        per_env=expand(f"{OUT}/figures/paper_comparison_{{env}}.png", env=paper_envs()),
        table=report(f"{OUT}/tables/paper_returns.csv", caption="../report/paper_table.rst", category="Paper"),
        markdown=f"{OUT}/tables/paper_returns.md",
        seeds=report(f"{OUT}/tables/paper_seeds.csv", caption="../report/paper_seeds.rst", category="Paper"),
        seeds_markdown=f"{OUT}/tables/paper_seeds.md",
    conda:
        "../envs/mbpo.yaml"
    log:
        f"{OUT}/logs/paper.log",
    params:
        python=python,
        runs=run_dirs(),
        tables=lambda wildcards, output: Path(output.table).parent,
        figures=lambda wildcards, output: Path(output.comparison).parent,
        bootstrap=lambda wildcards: config["analysis"]["bootstrap_samples"],
        fractions=lambda wildcards: " ".join(str(f) for f in config["analysis"]["paper_fractions"]),
    shell:
        "{params.python:q} -m analysis.paper --runs {params.runs:q} --tables {params.tables:q} --figures {params.figures:q} "
        "--bootstrap-samples {params.bootstrap} --fractions {params.fractions} > {log:q} 2>&1"


rule crosscheck:
    input:
        markers(crosscheck_runs()),
    output:
        table=report(f"{OUT}/tables/crosscheck.csv", caption="../report/crosscheck.rst", category="Cross-check"),
        markdown=f"{OUT}/tables/crosscheck.md",
        figure=report(f"{OUT}/figures/crosscheck.png", caption="../report/crosscheck.rst", category="Cross-check"),
        pdf=f"{OUT}/figures/crosscheck.pdf",
    conda:
        "../envs/mbpo.yaml"
    log:
        f"{OUT}/logs/crosscheck.log",
    params:
        python=python,
        runs=crosscheck_runs(),
        tables=lambda wildcards, output: Path(output.table).parent,
        figures=lambda wildcards, output: Path(output.figure).parent,
        margins=lambda wildcards: [f"{env}={m}" for env, m in config["analysis"]["crosscheck_margin"].items()],
        bootstrap=config["analysis"]["bootstrap_samples"],
        seed=config["analysis"]["seed"],
    shell:
        "{params.python:q} -m analysis.crosscheck --runs {params.runs:q} --tables {params.tables:q} "
        "--figures {params.figures:q} --margin {params.margins:q} --bootstrap-samples {params.bootstrap} "
        "--seed {params.seed} > {log:q} 2>&1"
