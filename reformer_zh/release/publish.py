"""Publish a reformer-zh checkpoint as a complete Hub repository.

    python scripts/publish.py outputs/lcsts --repo_id USER/reformer-zh-lcsts [--private] [--revision BRANCH]
    python scripts/publish.py outputs/lcsts --repo_id USER/reformer-zh-lcsts --dry_run folder/   # upload nothing

Assembles config.json (auto_map, custom_pipelines), model.safetensors, generation_config.json,
the tokenizer files, the model/tokenizer/pipeline code and a model card (reformer_zh/release/model_card_template.md
filled from the checkpoint's config, trainer_state.json and all_results.json); validates it (the
card's metadata parses with huggingface_hub's ModelCard; the folder loads with
trust_remote_code=True in a subprocess where this project cannot be imported, and gives the same
logits); then uploads with huggingface_hub (create_repo(exist_ok=True) + upload_folder).

The token comes from HF_TOKEN or the huggingface_hub login and is never printed or written.
Pickle checkpoints (pytorch_model.bin) are refused.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent / "model_card_template.md"
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer_config.json", "vocab.txt")
PROBE_TEXT = "本市今天发布新版公交线路图，新增十二条夜间线路。"
TAGS = ["reformer", "lsh-attention", "long-context", "chinese", "summarization"]


class PublishError(ValueError):
    """A checkpoint that cannot be published as it is; the message says what is missing."""


def check_checkpoint(checkpoint: Path) -> None:
    if not checkpoint.is_dir():
        raise PublishError(f"{checkpoint} is not a folder.")
    if (checkpoint / "pytorch_model.bin").exists() and not (checkpoint / "model.safetensors").exists():
        raise PublishError(
            f"{checkpoint} holds a pickle checkpoint (pytorch_model.bin), which this script never loads; "
            "re-save it as safetensors first: model.save_pretrained(folder, safe_serialization=True)."
        )
    missing = [name for name in REQUIRED_FILES if not (checkpoint / name).exists()]
    if missing:
        hint = " (the tokenizer: save it with tokenizer.save_pretrained(folder))" if "vocab.txt" in missing else ""
        raise PublishError(f"{checkpoint} lacks {missing}{hint}.")


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def describe_training(checkpoint: Path, datasets: list[str]) -> str:
    state = read_json(checkpoint / "trainer_state.json")
    summary = read_json(checkpoint / "training_summary.json")  # written by reformer-zh-train
    lines = [f"- data: {', '.join(datasets) if datasets else 'not recorded'}"]
    if summary.get("base_model"):
        base = hub_model_id(summary["base_model"])
        lines.append(f"- fine-tuned from: {base}" if base else
                     f"- fine-tuned from a local checkpoint ({Path(summary['base_model']).name})")
    if state:
        history = [entry for entry in state.get("log_history", []) if "loss" in entry]
        lines += [
            f"- steps: {state.get('global_step')}, epochs: {state.get('epoch'):.2f}" if state.get("epoch") is not None
            else f"- steps: {state.get('global_step')}",
            f"- batch size per device: {state.get('train_batch_size')}",
        ]
        if history:
            lines.append(f"- last logged training loss: {history[-1]['loss']:.4f} (step {history[-1].get('step')})")
    else:
        lines.append("- procedure: not recorded (no trainer_state.json in the checkpoint)")
    lines.append("- trained with `reformer-zh-train` (transformers `Seq2SeqTrainer`)")
    if summary.get("hyperparameters"):
        lines += ["", "Hyperparameters:", ""]
        lines += [f"- {name}: {value}" for name, value in summary["hyperparameters"].items() if value is not None]
    if summary.get("framework_versions"):
        lines += ["", "Framework versions: " + ", ".join(f"{name} {version}" for name, version
                                                         in summary["framework_versions"].items())]
    return "\n".join(lines)


# all_results.json's metric prefixes (the Trainer's) -> the split each was computed on (train.py:
# --do_eval reads --validation_file, --do_predict reads --test_file)
METRIC_SPLITS = {"eval": "validation", "predict": "test"}


def describe_evaluation(results: dict) -> tuple[str, list]:
    rows, metrics = [], []
    for prefix, split in METRIC_SPLITS.items():
        if f"{prefix}_rougeL" in results:
            scores = [results[f"{prefix}_{name}"] for name in ("rouge1", "rouge2", "rougeL")]
            distinct = results.get(f"{prefix}_distinct_share")
            rows.append(f"| {split} | " + " | ".join(f"{s:.2f}" for s in scores)
                        + f" | {'' if distinct is None else f'{distinct:.1%}'} |")
            metrics.append((split, scores))
    if not rows:
        return "No evaluation results were recorded with this checkpoint (all_results.json).", []
    table = "| split | ROUGE-1 | ROUGE-2 | ROUGE-L | distinct outputs |\n|---|---:|---:|---:|---:|\n" + "\n".join(rows)
    return table, metrics


def describe_tokenizer(folder: Path) -> str:
    settings = read_json(folder / "tokenizer_config.json")
    vocab = folder / "vocab.txt"
    size = len(vocab.read_text(encoding="utf-8").splitlines()) if vocab.exists() else "?"
    mode = settings.get("segmentation", "word")
    kind = "jieba words with character fallback" if mode == "word" else "one token per Chinese character"
    return f"`ReformerZhTokenizer`, {mode} mode ({kind}), {size} tokens"


def hub_model_id(name: str | None) -> str | None:
    """A Hub id for the card's base_model; a local folder (outputs/xwlb-story) is not one."""
    if not name or Path(name).exists() or name.count("/") != 1:
        return None
    return name


# what each shared set taught a model to write: a card's intended use names only what it trained on
DOMAINS = {
    "xwlb": "headlines of CCTV evening-news stories (and, story by story, rundowns of whole evenings)",
    "lcsts": "headlines of short Weibo news posts",
    "csl": "titles of scientific-paper abstracts",
    "cail2020": "summaries of first-instance civil judgments",
    "vcsum": "summaries of meeting transcripts",
}


def intended_use(datasets: list[str], license_name: str | None) -> str:
    """The card's intended use: the kinds of Chinese document the data held, and the data's terms."""
    known = [DOMAINS[name] for name in datasets if name in DOMAINS]
    what = (f"Abstractive summaries of the kinds of Chinese document it was trained on: {'; '.join(known)}. "
            "Other kinds of document have not been measured." if known else
            "Abstractive summaries of Chinese documents like those it was trained on.")
    if license_name:
        what += (f" The weights carry the terms of their training data (license `other`, {license_name}: research "
                 "and learning use, no commercial use); the code is Apache-2.0.")
    return what


def write_card(
    path: Path, checkpoint: Path | None, repo_id: str, datasets: list[str], config: dict, parameters: int, tokenizer: str,
    license_name: str | None = None,
) -> None:
    """Fill reformer_zh/release/model_card_template.md; `checkpoint` (trainer_state.json, all_results.json) may be None.
    The weights' license is apache-2.0 (the code's) unless `license_name` names other terms (weights
    trained on research-only data carry them: license `other`)."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    results = read_json(checkpoint / "all_results.json") if checkpoint else {}
    evaluation, metrics = describe_evaluation(results)
    eval_results = [
        EvalResult(task_type="summarization", dataset_type=datasets[0] if datasets else "unknown",
                   dataset_name=datasets[0] if datasets else "unknown", dataset_split=split,
                   metric_type=metric, metric_name=f"{metric} (characters)", metric_value=round(value, 2))
        for split, scores in metrics
        for metric, value in zip(("rouge1", "rouge2", "rougeL"), scores)
    ]
    summary = read_json(checkpoint / "training_summary.json") if checkpoint else {}
    card_data = ModelCardData(
        language="zh", license="other" if license_name else "apache-2.0", library_name="transformers",
        pipeline_tag="summarization", **({"license_name": license_name} if license_name else {}),
        tags=TAGS, datasets=datasets or None, metrics=["rouge"], base_model=hub_model_id(summary.get("base_model")),
        model_name=repo_id.split("/")[-1], eval_results=eval_results or None,
    )
    kinds = config["encoder_attn_layers"]
    card = ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATE),
        model_name=repo_id.split("/")[-1],
        repo_id=repo_id,
        parameters=f"{parameters / 1e6:.1f}M",
        encoder_layers=f"{len(kinds)} ({', '.join(kinds)})",
        decoder_layers=f"{len(config['decoder_attn_layers'])} ({', '.join(config['decoder_attn_layers'])})",
        hidden_size=config["hidden_size"],
        heads=f"{config['num_attention_heads']} x {config['attention_head_size']}",
        feed_forward_size=config["feed_forward_size"],
        lsh=f"{config['num_hashes']} hash rounds, chunk {config['lsh_attn_chunk_length']}, "
        + (f"exact attention at or below {config['full_attn_threshold']} tokens" if config["full_attn_threshold"]
           else "hashing at every length"),
        local=f"chunk {config['local_attn_chunk_length']}, {config['local_num_chunks_before']} before / "
              f"{config['local_num_chunks_after']} after",
        max_positions=config["max_position_embeddings"],
        reversible=config["reversible"],
        tokenizer=tokenizer,
        training=describe_training(checkpoint, datasets) if checkpoint else
        f"- data: {', '.join(datasets)}\n- a reference configuration: no checkpoint has been published with it yet",
        evaluation=evaluation,
        intended_use=intended_use(datasets, license_name),
    )
    card.save(path)


def assemble(checkpoint: Path, folder: Path, repo_id: str, datasets: list[str]) -> dict:
    """Write the repository folder; return what validation compares against."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    import modeling_reformer_zh  # noqa: F401  (registers the Auto classes)

    check_checkpoint(checkpoint)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForSeq2SeqLM.from_pretrained(checkpoint).eval()
    if len(tokenizer) != model.config.vocab_size:
        raise PublishError(f"the tokenizer has {len(tokenizer)} tokens but config.json says vocab_size "
                           f"{model.config.vocab_size}: they do not belong together.")
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)  # weights, config with auto_map + custom_pipelines, code, generation config
    tokenizer.save_pretrained(folder)
    for name in ("trainer_state.json", "all_results.json", "training_summary.json"):
        if (checkpoint / name).exists():
            shutil.copyfile(checkpoint / name, folder / name)
    write_card(folder / "README.md", checkpoint, repo_id, datasets, read_json(folder / "config.json"),
               sum(p.numel() for p in model.parameters()), describe_tokenizer(folder))
    return expected_probe(model, tokenizer)


def expected_probe(model, tokenizer) -> dict:
    """What `validate` compares a folder against: the probe text's ids and the model's logits
    for the first summary token."""
    import torch

    inputs = tokenizer(PROBE_TEXT, return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs, decoder_input_ids=torch.tensor([[model.config.decoder_start_token_id]])).logits
    return {"input_ids": inputs["input_ids"].tolist(), "logits": logits[0, -1].tolist()}


# Prepended to every script that must prove a folder loads without this project installed.
BLOCK_PROJECT_IMPORTS = textwrap.dedent(
    """
    import importlib.abc, sys

    class BlockProject(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("modeling_reformer_zh", "tokenization", "reformer_zh"):
                raise ImportError(f"{name} is blocked: the folder must carry its own code")

    sys.meta_path.insert(0, BlockProject())
    """
)

LOAD_SCRIPT = BLOCK_PROJECT_IMPORTS + textwrap.dedent(
    """
    import json
    import torch
    from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer, pipeline

    folder, expected = sys.argv[1], json.loads(open(sys.argv[2]).read())
    config = AutoConfig.from_pretrained(folder, trust_remote_code=True)
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
    model = AutoModelForSeq2SeqLM.from_pretrained(folder, trust_remote_code=True).eval()
    assert tokenizer(sys.argv[3], return_tensors="pt")["input_ids"].tolist() == expected["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor(expected["input_ids"]),
                       decoder_input_ids=torch.tensor([[config.decoder_start_token_id]])).logits[0, -1]
    difference = (logits - torch.tensor(expected["logits"])).abs().max().item()
    assert difference < 1e-4, difference
    summary = pipeline("summarization", model=folder, trust_remote_code=True)(sys.argv[3], max_new_tokens=4)
    assert set(summary[0]) == {"summary_text"}
    print("LOADS_WITHOUT_PROJECT", difference)
    """
)


def validate(folder: Path, expected: dict) -> None:
    from huggingface_hub import ModelCard

    card = ModelCard.load(folder / "README.md")
    metadata = card.data.to_dict()
    for key, value in (("language", "zh"), ("library_name", "transformers"), ("pipeline_tag", "summarization")):
        if metadata.get(key) != value:
            raise PublishError(f"model card metadata {key}={metadata.get(key)!r}, expected {value!r}")
    with tempfile.TemporaryDirectory() as scratch:
        expected_path = Path(scratch) / "expected.json"
        expected_path.write_text(json.dumps(expected))
        script = Path(scratch) / "load.py"
        script.write_text(LOAD_SCRIPT)
        environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HF_HUB_OFFLINE": "1",
                       "HF_HOME": str(Path(scratch) / "hf_home")}  # no token, no project on the path
        # the loader runs in the scratch folder: a relative `folder` would be read there as a Hub id
        result = subprocess.run([sys.executable, str(script), str(folder.resolve()), str(expected_path), PROBE_TEXT],
                                capture_output=True, text=True, cwd=scratch, env=environment, timeout=600)
    if "LOADS_WITHOUT_PROJECT" not in result.stdout:
        raise PublishError(f"{folder} does not load with trust_remote_code=True without the project:\n"
                           f"{result.stderr[-2000:]}")


def hub_token() -> str | None:
    from huggingface_hub import get_token

    return os.environ.get("HF_TOKEN") or get_token()


def resolve_repo_id(name: str, token: str | None = None) -> str:
    """USER/NAME as given; a bare NAME in the namespace of the token's user (as the Trainer's
    --hub_model_id does)."""
    if name.count("/") == 1 and all(name.split("/")):
        return name
    if "/" in name:
        raise PublishError(f"repository {name!r}: give NAME or USER/NAME")
    token = token or hub_token()
    if not token:
        raise PublishError(f"repository {name!r} has no namespace and there is no Hub token to find yours: give "
                           "USER/NAME, or set HF_TOKEN / run `hf auth login`.")
    from huggingface_hub import HfApi

    return f"{HfApi(token=token).whoami()['name']}/{name}"


def upload(folder: Path, repo_id: str, *, private: bool, revision: str | None, commit_message: str) -> str:
    from huggingface_hub import HfApi

    token = hub_token()
    if not token:
        raise PublishError("no Hub token: set HF_TOKEN or run `hf auth login` (the token is never printed or saved).")
    api = HfApi(token=token)
    api.create_repo(repo_id=repo_id, repo_type="model", private=private, exist_ok=True)
    if revision:
        api.create_branch(repo_id=repo_id, branch=revision, exist_ok=True)
    commit = api.upload_folder(repo_id=repo_id, folder_path=str(folder), revision=revision,
                               commit_message=commit_message, repo_type="model")
    return str(getattr(commit, "commit_url", commit))


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--repo_id", required=True, help="USER/NAME")
    parser.add_argument("--private", action="store_true")
    parser.add_argument("--revision", default=None, help="a branch to upload to (created if missing)")
    parser.add_argument("--commit_message", default="Upload reformer-zh summarizer")
    parser.add_argument("--dataset", action="append", default=[], help="training data names for the card")
    parser.add_argument("--dry_run", default=None, metavar="OUT_DIR", help="write the repository here, upload nothing")
    args = parser.parse_args(argv)
    if args.repo_id.count("/") != 1:
        raise PublishError(f"--repo_id {args.repo_id!r} must be USER/NAME")

    folder = Path(args.dry_run) if args.dry_run else Path(tempfile.mkdtemp(prefix="reformer-zh-publish-"))
    expected = assemble(Path(args.checkpoint), folder, args.repo_id, args.dataset)
    validate(folder, expected)
    if args.dry_run:
        print(f"dry run: {folder} holds what would be uploaded to {args.repo_id}")
        return folder
    url = upload(folder, args.repo_id, private=args.private, revision=args.revision, commit_message=args.commit_message)
    print(f"uploaded to {args.repo_id}: {url}")
    return folder


if __name__ == "__main__":
    from reformer_zh.commands import publish

    publish()
