"""reformer_zh/training/memory_log.py: the process's memory in the training log."""

from reformer_zh.training.memory_log import STATUS, MemoryLogCallback, memory_gib

STATUS_TEXT = "Name:\tpython\nVmHWM:\t15728640 kB\nVmRSS:\t 3145728 kB\nThreads:\t8\n"


def test_resident_and_peak_memory_are_read_in_gib():
    assert memory_gib(STATUS_TEXT) == {"rss_gib": 3.0, "peak_rss_gib": 15.0}
    assert memory_gib("Name:\tpython\n") == {}


def test_a_training_log_line_gets_the_memory_and_an_evaluation_line_does_not():
    training, evaluation = {"loss": 2.9, "learning_rate": 5e-4}, {"eval_loss": 2.5}
    for logs in (training, evaluation):
        MemoryLogCallback().on_log(None, None, None, logs=logs)
    assert "eval_loss" in evaluation and "rss_gib" not in evaluation
    if STATUS.is_file():  # Linux
        assert 0 < training["rss_gib"] <= training["peak_rss_gib"]
