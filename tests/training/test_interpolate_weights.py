"""reformer_zh/training/interpolate_weights.py: the mixture of a model and its fine-tune."""

from __future__ import annotations

import json

import pytest
import torch
from utils import ReformerZhModelTester, assert_close

from modeling_reformer_zh import ReformerZhForConditionalGeneration
from reformer_zh.training.interpolate_weights import interpolated_state, main


def test_the_shares_mix_floating_weights_in_fp32_and_keep_the_tuned_dtype_and_integer_buffers():
    base = {"w": torch.tensor([1.0, 2.0]), "h": torch.tensor([4.0], dtype=torch.bfloat16), "n": torch.tensor([7])}
    tuned = {"w": torch.tensor([3.0, 6.0]), "h": torch.tensor([8.0], dtype=torch.bfloat16), "n": torch.tensor([9])}
    assert all(torch.equal(interpolated_state(base, tuned, 0.0)[k], tuned[k]) for k in tuned)
    assert all(torch.equal(interpolated_state(base, tuned, 1.0)[k], base[k]) for k in ("w", "h"))
    quarter = interpolated_state(base, tuned, 0.25)
    assert torch.equal(quarter["w"], torch.tensor([2.5, 5.0]))  # 0.25 * base + 0.75 * tuned
    assert quarter["h"].dtype == torch.bfloat16 and quarter["h"].item() == 7.0
    assert torch.equal(quarter["n"], tuned["n"])


@pytest.mark.parametrize("base, share, message", [
    ({"w": torch.zeros(2)}, 1.5, "between 0 and 1"),
    ({"v": torch.zeros(2)}, 0.5, "different weights"),
    ({"w": torch.zeros(3)}, 0.5, "(3,) in the base and (2,)"),
])
def test_a_share_out_of_range_or_another_architecture_is_refused(base, share, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        interpolated_state(base, {"w": torch.zeros(2)}, share)


def test_the_command_writes_the_tuned_checkpoint_with_the_mixed_weights(tmp_path, sample_tokenizer):
    config = ReformerZhModelTester(vocab_size=len(sample_tokenizer)).get_config()
    folders = {}
    for seed, name in ((0, "base"), (1, "tuned")):
        torch.manual_seed(seed)
        ReformerZhForConditionalGeneration(config).save_pretrained(tmp_path / name)
        sample_tokenizer.save_pretrained(tmp_path / name)
        folders[name] = str(tmp_path / name)
    (tmp_path / "tuned" / "recipe_results.json").write_text('{"recipe": "general"}')
    main(["--base", folders["base"], "--tuned", folders["tuned"], "--base_share", "0.5",
          "--output_dir", str(tmp_path / "mixed")])
    mixed = ReformerZhForConditionalGeneration.from_pretrained(tmp_path / "mixed").state_dict()
    base = ReformerZhForConditionalGeneration.from_pretrained(folders["base"]).state_dict()
    tuned = ReformerZhForConditionalGeneration.from_pretrained(folders["tuned"]).state_dict()
    assert not torch.equal(base["lm_head.weight"], tuned["lm_head.weight"])
    for name in mixed:
        assert_close(mixed[name], (base[name] + tuned[name]) / 2, msg=name)
    assert (tmp_path / "mixed" / "vocab.txt").is_file() and (tmp_path / "mixed" / "pipeline_reformer_zh.py").is_file()
    assert json.loads((tmp_path / "mixed" / "interpolation.json").read_text())["base_share"] == 0.5
    # the fine-tune's training records go with it: shipping the mixture reads them
    assert json.loads((tmp_path / "mixed" / "recipe_results.json").read_text()) == {"recipe": "general"}


def test_writing_over_a_mixed_checkpoint_is_refused(tmp_path):
    for name in ("base", "tuned"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text("{}")
    with pytest.raises(SystemExit) as exit_info:
        main(["--base", str(tmp_path / "base"), "--tuned", str(tmp_path / "tuned"), "--base_share", "0.5",
              "--output_dir", str(tmp_path / "tuned")])
    assert exit_info.value.code == 2
