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
        out=OUT,
        settings=analysis_settings,
    shell:
        "{params.python} -m analysis.aggregate --runs {params.runs:q} --out {params.out:q}/tables --runs-root {params.out:q}/runs --benchmarks-root {params.out:q}/benchmarks {params.settings} > {log:q} 2>&1"


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
        out=OUT,
    shell:
        "{params.python} -m analysis.figures --tables {params.out:q}/tables --out {params.out:q}/figures > {log:q} 2>&1"
