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
        "{params.python} -m analysis.aggregate --runs {params.runs:q} --out {params.tables:q} --runs-root {params.runs_root:q} --benchmarks-root {params.benchmarks_root:q} {params.settings} > {log:q} 2>&1"


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
        "{params.python} -m analysis.figures --tables {params.tables:q} --out {params.figures:q} > {log:q} 2>&1"
