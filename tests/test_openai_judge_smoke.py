from tests.conftest import openr1_record, reasoning_trace


def test_openai_judge_end_to_end(tmp_path, write_jsonl, judge_server):
    server = judge_server(script={"a": ["429:0.1", "500", "ok"], "b": ["latex"], "c": ["hallucinate"]})
    rows = [openr1_record(f"u{c}", [reasoning_trace(i)], problem=f"Problem [case:{c}]") for i, c in enumerate("abc")]
    source = write_jsonl("in.jsonl", rows)
    from splitreason.annotator.pipeline import AnnotateRequest, run_annotate
    from rich.console import Console
    import asyncio
    out = tmp_path / "out"
    counts = asyncio.run(run_annotate(AnnotateRequest(input=str(source), out=out, judge="openai:scripted-judge",
                                                      base_url=server.base_url, retry_initial=0.01, progress=False),
                                      Console(stderr=True)))
    print(counts.as_dict())
    assert counts.annotated == 3
    assert [e.action for e in server.requests_for("a")] == ["429:0.1", "500", "ok"]
