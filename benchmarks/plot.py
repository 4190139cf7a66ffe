"""Plot benchmarks/results/scaling.json: seconds and peak memory per training step.

Left two panels: against input length (log-log, one line per system; a failed point ends its
line and is marked with its status). Right two: against encoder depth at one length, for the
reversible and plain variants of ours.

    python benchmarks/plot.py [--results benchmarks/results/scaling.json] [--out benchmarks/results/scaling.png]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LABELS = {
    "ours": "reformer-zh (reversible)",
    "ours-plain": "reformer-zh, reversible=False",
    "bart": "BART (SDPA)",
    "led": "LED (window 256)",
    "hf-reformer": "transformers ReformerModel (encoder only)",
    "reformer-pytorch": "reformer-pytorch ReformerEncDec",
    "reformer-pytorch-detached": "reformer-pytorch, encoder backward once",
}


def main(argv: list[str] | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default=str(ROOT / "benchmarks/results/scaling.json"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/scaling.png"))
    args = parser.parse_args(argv)
    report = json.loads(Path(args.results).read_text())
    settings, results = report["settings"], report["results"]

    figure, axes = plt.subplots(1, 4, figsize=(20, 5))
    for system in LABELS:
        points = [p for p in results if p["system"] == system and p["depth"] == settings["depth"]]
        measured = [p for p in points if p["status"] == "ok"]
        if not measured:
            continue
        lengths = [p["length"] for p in measured]
        for axis, key in zip(axes[:2], ("seconds_per_step", "peak_rss_gib")):
            (line,) = axis.plot(lengths, [p[key] for p in measured], marker="o", label=LABELS[system])
            failure = next((p for p in points if p["status"] not in ("ok", "skipped")), None)
            if failure:
                axis.annotate(failure["status"], (failure["length"], measured[-1][key]), color=line.get_color(),
                              fontsize=8, ha="center")
    for axis, title in zip(axes[:2], ("seconds per training step", "peak RSS, GiB")):
        axis.set(xscale="log", yscale="log", xlabel="input tokens", title=title)
        axis.set_xscale("log", base=2)
        axis.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)

    depth_length = settings["depth_length"]
    for system in settings["depth_systems"].split(","):
        measured = sorted((p for p in results if p["system"] == system and p["length"] == depth_length
                           and p["status"] == "ok"), key=lambda p: p["depth"])
        depths = sorted({p["depth"] for p in measured})
        measured = [next(p for p in measured if p["depth"] == d) for d in depths]
        axes[2].plot(depths, [p["seconds_per_step"] for p in measured], marker="o", label=LABELS[system])
        axes[3].plot(depths, [p["peak_above_model_gib"] for p in measured], marker="o", label=LABELS[system])
    for axis, title in zip(axes[2:], (f"seconds per step at {depth_length} tokens",
                                      f"peak RSS above the model at {depth_length} tokens, GiB")):
        axis.set(xlabel="encoder layers", title=title)
        axis.grid(True, alpha=0.3)
        axis.set_ylim(bottom=0)
    axes[3].legend(fontsize=8)
    machine = report.get("machine", {})
    figure.suptitle(f"One training step, batch 1, target 64 tokens: {machine.get('threads')} threads of "
                    f"{machine.get('processor', '?')}, torch {machine.get('torch', '?')}, {machine.get('allocator')}",
                    fontsize=10)
    figure.tight_layout()
    figure.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
