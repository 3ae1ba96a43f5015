"""`splitreason evaluate offload`: the pair on an evaluation set, every sample kept for audit.

    prompts.py    what each model is shown (the small model's training prompt, the large model's own template)
    run.py        the run: OUT claimed, settings checked on resume, one row per (mode, problem, sample)
    summary.py    accuracy, tokens, offload share, handoffs, wall time and projected latency per mode
"""
