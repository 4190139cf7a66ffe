"""The one build step pyproject.toml cannot declare: the shipped model's folder in the wheel gets
the model code it loads with (`trust_remote_code=True`), copied from modeling_reformer_zh/ and
tokenization/ by reformer_zh/release/remote_code.py, so git holds one copy of that code."""

import runpy
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildWithModelCode(build_py):
    def run(self):
        super().run()
        folder = Path(self.build_lib) / "reformer_zh" / "reference_model"
        if (folder / "config.json").is_file():  # a checkout that carries the shipped model
            # by path: importing the reformer_zh package would import torch, which a build may not have
            runpy.run_path(str(HERE / "reformer_zh" / "release" / "remote_code.py"))["write_remote_code"](folder, HERE)


setup(cmdclass={"build_py": BuildWithModelCode})
