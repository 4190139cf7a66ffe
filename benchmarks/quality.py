"""Real-data check: reformer-zh against a same-size BART, same tokenizer, data and wall-clock budget.

Both models are trained from scratch on ../shared/data/lcsts/train.jsonl with one loop (AdamW,
warm-up then linear decay, label smoothing, batches of similar length), for the same number of
wall-clock minutes on the same threads, then summarize the validation split (selection) and, with
--dev_test, the dev_test split (report; recorded in benchmarks/results/dev_test_ledger.jsonl)
greedily. Scores: character ROUGE-1/2/L F1, and the share of distinct
summaries (a collapsed model writes one summary for every input), beside the lead baseline
(the document's first sentence).

    python benchmarks/quality.py --budget_minutes 12 --out benchmarks/results/quality.json

The memory family (issue 7) on the same setup, each option alone on the baseline:

    python benchmarks/quality.py --systems reformer-zh,reformer-zh+mem_kv4,reformer-zh+pkm,reformer-zh+mean_heads \
        --budget_minutes 6 --out benchmarks/results/quality_memory.json

A system named `<system>+pretrain` spends the first --pretrain_minutes of its budget on
denoising pre-training (scripts/pretrain.py's noise, default settings) of the LCSTS training
documents, then fine-tunes for the rest: the same minutes as the system without it.

    python benchmarks/quality.py --systems reformer-zh+copy+pretrain,bart+pretrain --pretrain_minutes 5 ...
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reformer_zh.evaluation.baselines import first_sentence as lead  # noqa: E402
from reformer_zh.evaluation.rouge_zh import rouge_scores  # noqa: E402
from tokenization.build_vocab import read_jsonl  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "lcsts"


def build_models(vocab_size: int, pad: int, bos: int, eos: int, args):
    from transformers import BartConfig, BartForConditionalGeneration

    import modeling_reformer_zh

    common = dict(vocab_size=vocab_size, pad_token_id=pad, bos_token_id=bos, eos_token_id=eos,
                  decoder_start_token_id=bos)
    ours = modeling_reformer_zh.ReformerZhConfig(
        hidden_size=args.hidden, num_attention_heads=4, attention_head_size=args.hidden // 4,
        feed_forward_size=4 * args.hidden, encoder_attn_layers=["local", "lsh"] * (args.encoder_layers // 2),
        decoder_attn_layers=["full"] * args.decoder_layers, lsh_attn_chunk_length=64, local_attn_chunk_length=64,
        axial_pos_shape=[16, 32], axial_pos_embds_dim=[args.hidden // 4, args.hidden - args.hidden // 4],
        max_position_embeddings=512, full_attn_threshold=args.full_attn_threshold, reversible=args.reversible,
        local_num_chunks_after=args.local_num_chunks_after,
        hidden_dropout_prob=args.dropout, attention_probs_dropout_prob=args.dropout, **common,
    )
    bart = BartConfig(
        d_model=args.hidden, encoder_layers=args.encoder_layers, decoder_layers=args.decoder_layers,
        encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=4 * args.hidden,
        decoder_ffn_dim=4 * args.hidden, max_position_embeddings=512, dropout=args.dropout,
        attention_dropout=args.dropout, forced_eos_token_id=None, **common,
    )
    def variant(**overrides):
        config = modeling_reformer_zh.ReformerZhConfig(**{**ours.to_dict(), **overrides})
        return lambda: modeling_reformer_zh.ReformerZhForConditionalGeneration(config)

    # The memory family (issue 7), each option alone on top of the reformer-zh baseline.
    middle = args.encoder_layers // 2
    from plain_transformer import PlainTransformer

    return {
        "reformer-zh": variant(),
        # the reference that tells a recipe problem from a model problem (benchmarks/plain_transformer.py)
        "transformer": lambda: PlainTransformer(vocab_size, args.hidden, args.encoder_layers, args.decoder_layers,
                                                args.dropout, pad, bos, eos),
        "bart": lambda: BartForConditionalGeneration(bart),
        "reformer-zh+mem_kv4": variant(num_mem_kv=4),
        "reformer-zh+pkm": variant(pkm_layers=[middle], pkm_num_keys=64, pkm_topk=16, pkm_heads=4, pkm_dim_key=64),
        "reformer-zh+pkm_batchnorm": variant(pkm_layers=[middle], pkm_num_keys=64, pkm_topk=16, pkm_heads=4,
                                             pkm_dim_key=64, pkm_query_norm="batch"),
        "reformer-zh+mean_heads": variant(head_combine="mean"),
        # issue 12: what makes the decoder read its input
        "reformer-zh+copy": variant(copy_attention=True),
        "reformer-zh+scale_embedding": variant(scale_embedding=True),
        "reformer-zh+copy+scale_embedding": variant(copy_attention=True, scale_embedding=True),
    }


def batches(encoded: list[tuple[list[int], list[int]]], batch_size: int, pad: int, rng: random.Random):
    """Endless stream of length-grouped, shuffled batches."""
    while True:
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]) + rng.random())
        groups = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        rng.shuffle(groups)
        for group in groups:
            sources = [encoded[i][0] for i in group]
            targets = [encoded[i][1] for i in group]
            width = max(map(len, sources))
            input_ids = torch.tensor([s + [pad] * (width - len(s)) for s in sources])
            target_width = max(map(len, targets))
            labels = torch.tensor([t + [-100] * (target_width - len(t)) for t in targets])
            yield input_ids, (input_ids != pad).long(), labels


def train_for(model, encoded, args, pad: int, checkpoint=None, budget_minutes: float | None = None,
              minutes_before: float = 0.0) -> dict:
    """Train for `budget_minutes` (default `args.budget_minutes`) of training time; every
    `args.curve_minutes` call `checkpoint(minutes_before + minutes, step)` (its time is not
    charged to the budget) for the learning curve; `minutes_before` counts pre-training."""
    from modeling_reformer_zh import memory_parameter_groups, memory_usage

    # product-key memory values get their own rate and no weight decay (a no-op for other models)
    groups = [g for g in memory_parameter_groups(model, args.learning_rate, args.memory_learning_rate, 0.01)
              if g["params"]]
    optimizer = torch.optim.AdamW(groups, lr=args.learning_rate, betas=(0.9, 0.98))
    for group in optimizer.param_groups:
        group["base_lr"] = group["lr"]
    budget = (args.budget_minutes if budget_minutes is None else budget_minutes) * 60
    warmup = args.warmup_steps
    rng = random.Random(0)
    stream = batches(encoded, args.batch_size, pad, rng)
    model.train()
    trained, step, losses, curve = 0.0, 0, [], []
    next_point = args.curve_minutes * 60 if args.curve_minutes else float("inf")
    if args.budget_steps and args.curve_steps:
        next_point = args.curve_steps
    max_steps = args.budget_steps or float("inf")
    if args.budget_steps:  # a step budget: progress (the decay) and the curve count steps, not time
        budget = float("inf")
    while trained < budget and step < max_steps:
        step_started = time.perf_counter()
        input_ids, attention_mask, labels = next(stream)
        # warm-up, then linear decay against the elapsed share of the budget
        progress = step / max_steps if args.budget_steps else trained / budget
        scale = min(1.0, (step + 1) / warmup) * max(0.05, 1.0 - progress)
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * scale
        logits = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).logits
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100,
            label_smoothing=args.label_smoothing,
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        step += 1
        trained += time.perf_counter() - step_started
        if step % 200 == 0:
            usage = memory_usage(model)
            print(f"  step {step}  loss {sum(losses[-200:]) / 200:.3f}  {trained:.0f} s"
                  + (f"  memory usage {usage}" if usage else ""), flush=True)
        elapsed = step if args.budget_steps else trained
        if checkpoint is not None and (elapsed >= next_point or trained >= budget or step >= max_steps):
            curve.append(checkpoint(minutes_before + trained / 60, step))
            next_point += args.curve_steps if args.budget_steps else args.curve_minutes * 60
            model.train()
    result = {"steps": step, "final_train_loss": sum(losses[-100:]) / max(1, len(losses[-100:]))}
    if curve:
        result["curve"] = curve
    usage = memory_usage(model)
    if usage:
        result["memory_usage_last_steps"] = usage
    return result


@torch.no_grad()
def validation_loss(model, tokenizer, rows: list[dict], args) -> float:
    """Mean token cross-entropy of the references under teacher forcing (no label smoothing)."""
    model.eval()
    total, tokens = 0.0, 0
    for start in range(0, len(rows), 32):
        chunk = rows[start : start + 32]
        batch = tokenizer([r["document"] for r in chunk], max_length=args.max_source_length, truncation=True,
                          padding=True, return_tensors="pt")
        labels = tokenizer([r["summary"] for r in chunk], max_length=args.max_target_length, truncation=True,
                           padding=True, return_tensors="pt")["input_ids"]
        labels[labels == tokenizer.pad_token_id] = -100
        logits = model(**batch, labels=labels).logits
        total += torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                                   ignore_index=-100, reduction="sum").item()
        tokens += int((labels != -100).sum())
    return total / tokens


@torch.no_grad()
def summarize(model, tokenizer, documents: list[str], args) -> list[str]:
    model.eval()
    outputs = []
    for start in range(0, len(documents), 32):
        batch = tokenizer(documents[start : start + 32], max_length=args.max_source_length, truncation=True,
                          padding=True, return_tensors="pt")
        generated = model.generate(**batch, max_new_tokens=args.max_target_length, num_beams=1, do_sample=False)
        outputs += tokenizer.batch_decode(generated, skip_special_tokens=True)
    return outputs


def denoising_pairs(documents: list[str], tokenizer) -> list[tuple[list[int], list[int]]]:
    """The training documents noised as scripts/pretrain.py does with its defaults, encoded."""
    from reformer_zh.training.pretrain import NOISE_DEFAULTS, noised_pairs

    pairs = noised_pairs(documents, argparse.Namespace(**NOISE_DEFAULTS), random.Random(0))
    length = NOISE_DEFAULTS["segment_length"] + 2
    sources = tokenizer([p["document"] for p in pairs], max_length=length, truncation=True)["input_ids"]
    targets = tokenizer([p["summary"] for p in pairs], max_length=length, truncation=True)["input_ids"]
    return list(zip(sources, targets))


def parse_arguments(argv: list[str] | None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", default="reformer-zh,bart")
    parser.add_argument("--budget_minutes", type=float, default=12)
    parser.add_argument("--segmentation", default="char", choices=["char", "word"])
    parser.add_argument("--vocab_size", type=int, default=6000)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--encoder_layers", type=int, default=4)
    parser.add_argument("--decoder_layers", type=int, default=2)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--learning_rate", type=float, default=7e-4)
    parser.add_argument("--memory_learning_rate", type=float, default=7e-3,
                        help="product-key memory values: each slot is read by few tokens per step, so a larger rate")
    parser.add_argument("--warmup_steps", type=int, default=300)
    parser.add_argument("--label_smoothing", type=float, default=0.1)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--reversible", action="store_true",
                         help="reversible backward (same function, less memory, ~30%% slower); off for short LCSTS inputs")
    parser.add_argument("--local_num_chunks_after", type=int, default=0,
                         help="1 lets encoder local layers see the next chunk too (a symmetric window)")
    parser.add_argument("--full_attn_threshold", type=int, default=512,
                         help="LCSTS documents (~110 characters) run the LSH layers exactly below this length")
    parser.add_argument("--max_source_length", type=int, default=160)
    parser.add_argument("--max_target_length", type=int, default=32)
    parser.add_argument("--eval_samples", type=int, default=None, help="validation/dev_test rows to summarize")
    parser.add_argument("--dev_test", action="store_true",
                        help="score dev_test too: once per reported system (ledgered)")
    parser.add_argument("--budget_steps", type=int, default=0,
                        help="train this many steps instead of --budget_minutes (per-step comparisons on a noisy machine)")
    parser.add_argument("--curve_steps", type=int, default=0, help="with --budget_steps: curve points every this many steps")
    parser.add_argument("--curve_minutes", type=float, default=0,
                        help="score validation greedily every this many training minutes (not charged to the budget)")
    parser.add_argument("--pretrain_minutes", type=float, default=5,
                        help="<system>+pretrain: minutes of the budget spent on denoising pre-training first")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None)
    return parser, parser.parse_args(argv)


def train_and_score(name: str, factories: dict, tokenizer, train_rows: list[dict], encoded: list, splits: dict,
                    args, pretrain_pairs: list | None) -> tuple[dict, list | None]:
    """One system trained within the budget (after denoising pre-training for a +pretrain one) and
    scored on every split: its report entry, and the pre-training pairs for the next system."""
    pad = tokenizer.pad_token_id
    torch.manual_seed(0)
    model = factories[name.removesuffix("+pretrain")]()
    parameters = sum(p.numel() for p in model.parameters())
    print(f"{name}: {parameters / 1e6:.1f}M parameters, {args.budget_minutes} min", flush=True)

    def checkpoint(minutes: float, step: int, model=model) -> dict:
        rows = splits["validation"]
        scores = rouge_scores(summarize(model, tokenizer, [r["document"] for r in rows], args),
                              [r["summary"] for r in rows])
        point = {"minutes": round(minutes, 2), "step": step, "validation_rougeL": scores["rougeL"],
                 "validation_distinct_share": scores["distinct_share"],
                 "validation_loss": validation_loss(model, tokenizer, splits["validation"][:128], args)}
        print(f"  curve {point}", flush=True)
        return point

    wants_curve = args.curve_minutes or (args.budget_steps and args.curve_steps)
    entry = {"parameters_millions": parameters / 1e6}
    fine_tune_minutes = args.budget_minutes
    if name.endswith("+pretrain"):
        if pretrain_pairs is None:
            pretrain_pairs = denoising_pairs([r["document"] for r in train_rows], tokenizer)
        pretraining = train_for(model, pretrain_pairs, args, pad, budget_minutes=args.pretrain_minutes)
        entry["pretraining"] = {"minutes": args.pretrain_minutes, "pairs": len(pretrain_pairs), **pretraining}
        fine_tune_minutes = args.budget_minutes - args.pretrain_minutes
    entry.update(train_for(model, encoded, args, pad, checkpoint if wants_curve else None,
                           budget_minutes=fine_tune_minutes, minutes_before=args.budget_minutes - fine_tune_minutes))
    entry["validation_loss"] = validation_loss(model, tokenizer, splits["validation"], args)
    for split, rows in splits.items():
        predictions = summarize(model, tokenizer, [r["document"] for r in rows], args)
        entry[split] = rouge_scores(predictions, [r["summary"] for r in rows])
        entry[split + "_examples"] = [
            {"reference": r["summary"], "prediction": p} for r, p in list(zip(rows, predictions))[:3]
        ]
    if args.dev_test:  # once per reported system; the ledger shows any second look
        from reformer_zh.evaluation.dev_test_ledger import record_dev_test_scoring

        entry["dev_test_scorings"] = record_dev_test_scoring(f"quality.py: {name}", name, vars(args))
    return entry, pretrain_pairs


def print_table(report: dict, splits: dict) -> None:
    print(f"\n{'system':<24} {'steps':>6} {'val loss':>8} {'split':<10} {'R-1':>6} {'R-2':>6} {'R-L':>6} {'distinct':>8}")
    for name, entry in report["results"].items():
        for split in splits:
            scores = entry[split]
            loss = f"{entry['validation_loss']:.3f}" if "validation_loss" in entry else ""
            print(f"{name:<24} {entry.get('steps', ''):>6} {loss:>8} {split:<10} {scores['rouge1']:>6.1f} "
                  f"{scores['rouge2']:>6.1f} {scores['rougeL']:>6.1f} {scores['distinct_share']:>8.1%}")


def main(argv: list[str] | None = None) -> None:
    parser, args = parse_arguments(argv)
    if not (DATA / "train.jsonl").exists():
        sys.exit(f"LCSTS not found at {DATA}; this benchmark reads ../shared/data in place")
    torch.set_num_threads(args.threads)

    import tempfile

    from tokenization.build_vocab import build_tokenizer

    tokenizer = build_tokenizer(train_file=str(DATA / "train.jsonl"), output_dir=tempfile.mkdtemp(),
                                vocab_size=args.vocab_size, segmentation=args.segmentation, num_proc=1)
    train_rows = read_jsonl(DATA / "train.jsonl")
    splits = {"validation": read_jsonl(DATA / "validation.jsonl", args.eval_samples or 300)}
    if args.dev_test:
        splits["dev_test"] = read_jsonl(DATA / "dev_test.jsonl", args.eval_samples)
    sources = tokenizer([r["document"] for r in train_rows], max_length=args.max_source_length, truncation=True)
    targets = tokenizer([r["summary"] for r in train_rows], max_length=args.max_target_length, truncation=True)
    encoded = list(zip(sources["input_ids"], targets["input_ids"]))
    pad, bos, eos = tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id

    report = {"settings": vars(args), "tokenizer_vocab": tokenizer.vocab_size, "results": {}}
    for split, rows in splits.items():
        report["results"].setdefault("lead", {})[split] = rouge_scores([lead(r["document"]) for r in rows],
                                                                       [r["summary"] for r in rows])
    factories = build_models(tokenizer.vocab_size, pad, bos, eos, args)
    systems = args.systems.split(",")
    unknown = [n for n in systems if n.removesuffix("+pretrain") not in factories]
    if unknown:
        parser.error(f"unknown system {unknown[0]!r}; choose from {', '.join(factories)} (each may end in +pretrain)")
    if any(n.endswith("+pretrain") for n in systems) and (
            args.budget_steps or not 0 < args.pretrain_minutes < args.budget_minutes):
        parser.error("a +pretrain system needs a minutes budget (no --budget_steps) and 0 < --pretrain_minutes < "
                     "--budget_minutes")
    pretrain_pairs = None
    for name in systems:
        entry, pretrain_pairs = train_and_score(name, factories, tokenizer, train_rows, encoded, splits, args,
                                                pretrain_pairs)
        report["results"][name] = entry
        print(json.dumps({k: v for k, v in entry.items() if not k.endswith("examples")}, ensure_ascii=False), flush=True)
        if args.out:  # after every system: a long run that is stopped keeps what it measured
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")

    print_table(report, splits)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
