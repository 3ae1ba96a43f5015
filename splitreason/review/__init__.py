"""Human review: the review store, the merge policy, and the Argilla round trip."""
