rule aggregate:
    input:
        run_metadata(),
    output:
        summary=report("results/tables/summary.csv", caption="../report/summary.rst", category="Tables"),
        markdown="results/tables/summary.md",
        latex="results/tables/summary.tex",
        curves="results/tables/curves.csv",
        evaluations="results/tables/evaluations.csv",
    conda:
        "../envs/mbpo.yaml"
    log:
        "results/logs/aggregate.log",
    params:
        python=python,
        runs=run_dirs(),
        settings=analysis_settings,
    shell:
        "{params.python} -m analysis.aggregate --runs {params.runs:q} --out results/tables {params.settings} > {log:q} 2>&1"


rule figures:
    input:
        summary="results/tables/summary.csv",
        curves="results/tables/curves.csv",
        evaluations="results/tables/evaluations.csv",
    output:
        report(
            expand("results/figures/{name}.png", name=figure_names()),
            caption="../report/figures.rst",
            category="Figures",
        ),
        expand("results/figures/{name}.pdf", name=figure_names()),
    conda:
        "../envs/mbpo.yaml"
    log:
        "results/logs/figures.log",
    params:
        python=python,
    shell:
        "{params.python} -m analysis.figures --tables results/tables --out results/figures > {log:q} 2>&1"
