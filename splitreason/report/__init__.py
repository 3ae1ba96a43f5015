"""`splitreason report`: one self-contained HTML page (and a terminal summary) about a run; and
`splitreason stats`, whose numbers (stats.py: status, reasons, coverage, spans, tokens) the report shows too.

collect.py reads the run once (streaming) into numbers, plots.py draws them with matplotlib,
html.py renders template.html.jinja, prices.py prices the judges' tokens, curation.py reads the
curate.json of the run's input, terminal.py prints the summary.
"""
