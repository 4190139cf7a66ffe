"""Scoring: Chinese ROUGE (and its `evaluate` metric), the extractive rules beside the model, the
whole-document section metrics, the yardstick's README table and the dev_test ledger."""
