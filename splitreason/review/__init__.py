"""Human review: the review store, reconciling several reviews of a trace (reconcile.py), and the Argilla round trip."""
