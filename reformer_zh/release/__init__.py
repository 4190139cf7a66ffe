"""Releasing a model: the model shipped in the package (its folder, reformer_zh/reference_model/),
the remote code every checkpoint carries, and `reformer-zh-publish` with its model card."""
