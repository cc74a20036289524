"""Install tfgap. The pinned stack lives in requirements.txt (see README, "Stack")."""

import pathlib

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent


def _requirements():
  lines = (HERE / "requirements.txt").read_text().splitlines()
  return [l.split("#")[0].strip() for l in lines if l.split("#")[0].strip()]


setup(
    name="tfgap",
    version="0.1.0",
    description=("Mind the GAP! (Sokar & Castro): scaled pixel encoders and their bottlenecks "
                 "for deep RL on TensorFlow 2 / Keras 2 and TF-Agents."),
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["tfgap", "tfgap.*"]),
    package_data={"tfgap.launch": ["configs/*.gin"]},
    python_requires=">=3.10,<3.12",
    install_requires=_requirements(),
    # Optional loggers, never needed to train: `pip install tfgap[wandb]`.
    extras_require={"wandb": ["wandb"]},
    entry_points={
        "console_scripts": [
            # Through tfgap.launch.cli: it sets TensorFlow's defaults before TensorFlow loads.
            "tfgap-train=tfgap.launch.cli:train",
            "tfgap-describe=tfgap.launch.cli:describe",
            "tfgap-report=tfgap.launch.cli:report",
            "tfgap-study=tfgap.launch.cli:study",
            "tfgap-evaluate=tfgap.launch.cli:evaluate",
        ],
    },
)
