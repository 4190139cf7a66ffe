"""scripts/publish.py: the dry-run folder is the uploaded repository, it loads without the
project, the card validates, the token never leaks, and unpublishable checkpoints are refused.
The Hub client is stubbed at the network boundary (huggingface_hub.HfApi)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import huggingface_hub
import pytest
from huggingface_hub import ModelCard

# checkpoints assembled, validated and loaded in fresh processes: `make test-slow`
pytestmark = pytest.mark.slow


ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from reformer_zh.release import publish  # noqa: E402
from tokenization import ReformerZhTokenizer  # noqa: E402
from utils import ReformerZhModelTester  # noqa: E402

SECRET = "hf_do_not_leak_this_token_123"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("checkpoint")
    characters = sorted(set(publish.PROBE_TEXT))
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[BOS]", "[EOS]", "[MASK]"] + characters) + "\n",
                                      encoding="utf-8")
    tokenizer = ReformerZhTokenizer(vocab_file=str(folder / "vocab.txt"))
    tester = ReformerZhModelTester()
    model = tester.build_model(tester.get_config(vocab_size=len(tokenizer)))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "all_results.json").write_text(json.dumps(
        {"eval_rouge1": 31.5, "eval_rouge2": 18.25, "eval_rougeL": 28.0, "eval_distinct_share": 0.97}))
    (folder / "trainer_state.json").write_text(json.dumps(
        {"global_step": 1200, "epoch": 3.0, "train_batch_size": 32, "log_history": [{"loss": 2.5, "step": 1200}]}))
    (folder / "training_summary.json").write_text(json.dumps(  # as reformer-zh-train writes it
        {"base_model": "someone/reformer-zh-base", "hyperparameters": {"learning_rate": 0.001, "seed": 0},
         "framework_versions": {"transformers": "5.24.0", "torch": "2.13.0"}}))
    return folder


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_dry_run_writes_a_complete_validated_repository(checkpoint, tmp_path):
    out = publish.main([str(checkpoint), "--repo_id", "someone/reformer-zh-test", "--dataset", "lcsts",
                        "--dry_run", str(tmp_path / "repo")])
    names = set(folder_bytes(out))
    for name in ("README.md", "config.json", "model.safetensors", "generation_config.json", "tokenizer_config.json",
                 "vocab.txt", "modeling_reformer_zh.py", "tokenization_reformer_zh.py", "pipeline_reformer_zh.py",
                 "all_results.json", "trainer_state.json"):
        assert name in names, name
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in names)
    config = json.loads((out / "config.json").read_text())
    assert "AutoModelForSeq2SeqLM" in config["auto_map"]
    assert config["custom_pipelines"]["summarization"]["pt"] == ["AutoModelForSeq2SeqLM"]
    assert "AutoTokenizer" in json.loads((out / "tokenizer_config.json").read_text())["auto_map"]
    card = ModelCard.load(out / "README.md")
    data = card.data.to_dict()
    assert data["language"] == "zh" and data["pipeline_tag"] == "summarization" and "reformer" in data["tags"]
    rouge_l = [m for m in data["model-index"][0]["results"][0]["metrics"] if m["type"] == "rougeL"][0]
    assert rouge_l["value"] == 28.0
    # the dataset's split name (all_results.json's eval_* came from --validation_file), the base model
    assert data["model-index"][0]["results"][0]["dataset"]["split"] == "validation"
    assert data["base_model"] == "someone/reformer-zh-base"
    assert "learning_rate: 0.001" in card.text and "transformers 5.24.0" in card.text
    assert "28.00" in card.text and "someone/reformer-zh-test" in card.text and "steps: 1200" in card.text


def test_upload_sends_exactly_the_dry_run_folder_and_never_the_token(checkpoint, tmp_path, monkeypatch, capsys):
    calls = {}

    class FakeApi:
        def __init__(self, token=None):
            calls["token_given"] = token == SECRET

        def create_repo(self, **kwargs):
            calls["create_repo"] = kwargs

        def create_branch(self, **kwargs):
            calls["create_branch"] = kwargs

        def upload_folder(self, **kwargs):
            calls["upload_folder"] = {k: v for k, v in kwargs.items() if k != "folder_path"}
            calls["files"] = folder_bytes(Path(kwargs["folder_path"]))
            return "https://huggingface.co/someone/reformer-zh-test/commit/abc"

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setenv("HF_TOKEN", SECRET)
    publish.main([str(checkpoint), "--repo_id", "someone/reformer-zh-test", "--dataset", "lcsts", "--private",
                  "--revision", "v1", "--commit_message", "first upload"])
    assert calls["token_given"]
    assert calls["create_repo"] == {"repo_id": "someone/reformer-zh-test", "repo_type": "model", "private": True,
                                    "exist_ok": True}
    assert calls["create_branch"] == {"repo_id": "someone/reformer-zh-test", "branch": "v1", "exist_ok": True}
    assert calls["upload_folder"] == {"repo_id": "someone/reformer-zh-test", "revision": "v1",
                                      "commit_message": "first upload", "repo_type": "model"}
    dry = publish.main([str(checkpoint), "--repo_id", "someone/reformer-zh-test", "--dataset", "lcsts",
                        "--dry_run", str(tmp_path / "dry")])
    assert calls["files"] == folder_bytes(dry)  # byte for byte what the dry run wrote
    output = capsys.readouterr()
    assert SECRET not in output.out + output.err
    assert not any(SECRET.encode() in content for content in calls["files"].values())


def test_no_token_fails_before_uploading(checkpoint, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda **kwargs: pytest.fail("no client without a token"))
    with pytest.raises(publish.PublishError, match="HF_TOKEN"):
        publish.main([str(checkpoint), "--repo_id", "someone/x"])


def test_unpublishable_checkpoints_are_refused(checkpoint, tmp_path):
    pickle_only = tmp_path / "pickle"
    shutil.copytree(checkpoint, pickle_only)
    (pickle_only / "model.safetensors").rename(pickle_only / "pytorch_model.bin")
    with pytest.raises(publish.PublishError, match="pickle.*safetensors"):
        publish.main([str(pickle_only), "--repo_id", "someone/x", "--dry_run", str(tmp_path / "a")])

    no_tokenizer = tmp_path / "no_tokenizer"
    shutil.copytree(checkpoint, no_tokenizer)
    (no_tokenizer / "vocab.txt").unlink()
    with pytest.raises(publish.PublishError, match=r"lacks \['vocab.txt'\].*tokenizer"):
        publish.main([str(no_tokenizer), "--repo_id", "someone/x", "--dry_run", str(tmp_path / "b")])

    mismatch = tmp_path / "mismatch"
    shutil.copytree(checkpoint, mismatch)
    vocab = (mismatch / "vocab.txt").read_text(encoding="utf-8").splitlines()
    (mismatch / "vocab.txt").write_text("\n".join(vocab[:-2]) + "\n", encoding="utf-8")
    with pytest.raises(publish.PublishError, match="vocab_size"):
        publish.main([str(mismatch), "--repo_id", "someone/x", "--dry_run", str(tmp_path / "c")])

    with pytest.raises(publish.PublishError, match="USER/NAME"):
        publish.main([str(checkpoint), "--repo_id", "no-slash", "--dry_run", str(tmp_path / "d")])


@pytest.mark.parametrize("name", ["TEMPLATE", "reformer-zh-small.md", "reformer-zh-long.md"])
def test_shipped_cards_exist_and_reference_cards_validate(name):
    path = publish.TEMPLATE if name == "TEMPLATE" else ROOT / "model_cards" / name
    assert path.exists()
    if name != "TEMPLATE":
        data = ModelCard.load(path).data.to_dict()
        assert data["language"] == "zh" and data["pipeline_tag"] == "summarization"
        assert "## Limitations and biases" in path.read_text(encoding="utf-8")


def test_train_push_to_hub_uploads_the_publish_folder(tmp_path, monkeypatch):
    from reformer_zh.training import train

    uploaded = {}

    class FakeApi:
        def __init__(self, token=None):
            pass

        def whoami(self):
            return {"name": "someone"}

        def create_repo(self, **kwargs):
            uploaded["repo"] = kwargs["repo_id"]

        def create_branch(self, **kwargs):
            uploaded["branch"] = kwargs["branch"]

        def upload_folder(self, **kwargs):
            uploaded["files"] = folder_bytes(Path(kwargs["folder_path"]))
            uploaded["revision"] = kwargs["revision"]

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setenv("HF_TOKEN", SECRET)
    output = tmp_path / "run"
    tiny = ["--config_name", "tiny", "--tokenizer_vocab_size", "600", "--max_source_length", "256", "--report_to", "none",
            "--use_cpu", "--do_train", "--max_steps", "2", "--save_strategy", "no", "--push_to_hub"]
    # a bare name lands in the token's namespace, --hub_revision on its branch (as with the Trainer's flags)
    train.main(tiny + ["--output_dir", str(output), "--hub_model_id", "pushed", "--hub_revision", "v1"])
    assert uploaded["repo"] == "someone/pushed" and uploaded["branch"] == uploaded["revision"] == "v1"
    dry = publish.main([str(output), "--repo_id", "someone/pushed", "--dataset", "sample", "--dry_run", str(tmp_path / "dry")])
    assert uploaded["files"].keys() == folder_bytes(dry).keys()
    assert uploaded["files"]["model.safetensors"] == folder_bytes(dry)["model.safetensors"]
    with pytest.raises(ValueError, match="hub_model_id"):
        train.main(["--config_name", "tiny", "--do_train", "--output_dir", str(tmp_path / "x"), "--push_to_hub"])
    with pytest.raises(ValueError, match="add --do_train"):  # nothing trained: nothing to push, say so
        train.main(["--config_name", "tiny", "--do_eval", "--output_dir", str(tmp_path / "y"), "--push_to_hub",
                    "--hub_model_id", "someone/pushed"])
    # pushing unchecked checkpoints during training is refused before anything trains
    with pytest.raises(ValueError, match="--hub_strategy checkpoint would push checkpoints during training"):
        train.main(tiny + ["--output_dir", str(tmp_path / "z"), "--hub_model_id", "someone/x", "--hub_strategy",
                           "checkpoint"])
    assert not (tmp_path / "z" / "model.safetensors").exists()
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with pytest.raises(ValueError, match="no namespace and there is no Hub token"):
        train.main(tiny + ["--output_dir", str(tmp_path / "w"), "--hub_model_id", "pushed"])
