"""`make demo-train`: the whole training path on the embedded sample, in a few minutes on a laptop CPU.

1. build a character tokenizer from reformer_zh/sample/train.jsonl,
2. train the `tiny` config with copy attention through scripts/train.py (Seq2SeqTrainer), evaluate ROUGE on
   reformer_zh/sample/validation.jsonl,
3. print three summaries through `pipeline("summarization", trust_remote_code=True)`.

The sample is far too small to learn summarization (expect low ROUGE); real training points
scripts/train.py at a corpus, see the README.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default=str(ROOT / "outputs" / "demo"))
    parser.add_argument("--max_steps", type=int, default=300)
    args = parser.parse_args(argv)

    from reformer_zh.training import train

    metrics = train.main([
        "--config_name", "tiny", "--config_overrides", "copy_attention=true",
        "--tokenizer_segmentation", "char", "--tokenizer_vocab_size", "3000",
        "--output_dir", args.output_dir, "--do_train", "--do_eval", "--predict_with_generate",
        "--max_steps", str(args.max_steps), "--per_device_train_batch_size", "16", "--learning_rate", "2e-3",
        "--warmup_steps", "30", "--max_source_length", "512", "--max_target_length", "64",
        "--num_beams", "2", "--logging_steps", "50", "--save_strategy", "no", "--report_to", "none",
        "--disable_tqdm", "true", "--seed", "0",
    ])
    from transformers import pipeline

    from reformer_zh.evaluation.baselines import first_sentence
    from reformer_zh.evaluation.rouge_zh import rouge_scores

    summarizer = pipeline("summarization", model=args.output_dir, trust_remote_code=True)
    rows = [json.loads(line) for line in (ROOT / "reformer_zh" / "sample" / "validation.jsonl").read_text(encoding="utf-8").splitlines()]
    print("\n=== summaries from pipeline('summarization') ===")
    for row in rows[:3]:
        summary = summarizer(row["document"], num_beams=2, max_new_tokens=40, no_repeat_ngram_size=2)[0]["summary_text"]
        print(f"\n文档: {row['document'][:60]}…\n参考: {row['summary']}\n生成: {summary}")
    lead = rouge_scores([first_sentence(r["document"]) for r in rows], [r["summary"] for r in rows])
    print(f"\nvalidation ({len(rows)} pairs), character ROUGE F1:")
    print(f"  {'model':<15} ROUGE-1 {metrics['eval_rouge1']:5.1f}  ROUGE-2 {metrics['eval_rouge2']:5.1f}  "
          f"ROUGE-L {metrics['eval_rougeL']:5.1f}  distinct outputs {metrics['eval_distinct_share']:.0%}")
    print(f"  {'first sentence':<15} ROUGE-1 {lead['rouge1']:5.1f}  ROUGE-2 {lead['rouge2']:5.1f}  "
          f"ROUGE-L {lead['rougeL']:5.1f}  (the baseline to beat)")
    print(f"checkpoint: {args.output_dir}  (python scripts/summarize.py {args.output_dir} \"文档\")")


if __name__ == "__main__":
    from reformer_zh.cli import run_command

    run_command(main)
