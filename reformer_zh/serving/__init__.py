"""Serving a model: the `reformer-zh-summarize` command, the `reformer-zh-serve` page and its HTTP
server, and the explanation of a summary (which tokens were copied, from where)."""
