"""reformer-zh-summarize decodes as pipeline() does unless told otherwise: the checkpoint's
generation config, not the command's own numbers."""

from __future__ import annotations

import json
import shutil

from reformer_zh.serving import summarize

DOCUMENT = "博物馆推出古代丝绸文物特展，展出一百二十件珍贵展品。"


def test_the_command_writes_the_summary_the_pipeline_writes(trained, tmp_path, capsys):
    from transformers import pipeline

    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(trained, checkpoint)
    config_file = checkpoint / "generation_config.json"
    config = json.loads(config_file.read_text())
    # none of them the command's old defaults (4 beams, 64 tokens); special tokens forbidden, so that
    # a model trained for 12 steps writes visible text
    config.update(max_new_tokens=3, num_beams=1, min_new_tokens=3, suppress_tokens=[0, 1, 2, 4])
    config_file.write_text(json.dumps(config))
    expected = pipeline("summarization", model=str(checkpoint), trust_remote_code=True)(DOCUMENT)[0]["summary_text"]
    assert expected and summarize.main([str(checkpoint), DOCUMENT]) == [expected]
    assert len(expected.replace(" ", "")) <= 3 * 4  # three tokens at most (a token may be a word piece)
    longer = summarize.main([str(checkpoint), DOCUMENT, "--max_new_tokens", "8", "--min_new_tokens", "8"])
    assert longer != [expected]  # a flag still wins over the checkpoint's config
    capsys.readouterr()
