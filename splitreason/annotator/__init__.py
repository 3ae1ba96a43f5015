"""The annotator: align a judge's quoted excerpts onto the trace, snap and merge the spans,
then validate, score and route the resulting annotation.

Modules: `align` (quote -> exact character offsets: exact, normalized, bounded fuzzy),
`spans` (snap spans to word / LaTeX-command boundaries, merge overlapping spans),
`routing` (confidence and accept / review / reject), `annotate` (verdict -> Annotation).
"""
