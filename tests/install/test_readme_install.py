"""The README's install commands, run as written: the CLI from the checkout, and the chart on one's own image."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.cluster.charting import helm

REPO = Path(__file__).resolve().parents[2]


def install_block() -> list[str]:
    """The commands of the README's Install section (continuation lines joined)."""
    section = REPO.joinpath("README.md").read_text().split("## Install", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    joined = block.group(1).replace("\\\n", " ")
    return [line.split("#", 1)[0].strip() for line in joined.splitlines() if line.strip()]


def test_pip_install_from_the_checkout_gives_both_commands(tmp_path: Path) -> None:
    (command,) = [line for line in install_block() if line.startswith("pip install")]
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True)
    pip = [str(tmp_path / "venv" / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, *command.split()[1:]], cwd=REPO, check=True, timeout=600)
    version = subprocess.run([str(tmp_path / "venv" / "bin" / "credop"), "--version"], capture_output=True, text=True)
    assert version.stdout.strip() == "credop 0.1.0"
    plugin = subprocess.run(
        [str(tmp_path / "venv" / "bin" / "kubectl-credop"), "--help"], capture_output=True, text=True
    )
    assert plugin.returncode == 0 and "kubectl credop" in plugin.stdout


def test_the_helm_install_command_runs_ones_own_image() -> None:
    (command,) = [line for line in install_block() if line.startswith("helm install")]
    words = command.split()
    options = [word for word in words[words.index("--set") - 1 :] if word]
    values = [options[i + 1] for i, word in enumerate(options) if word == "--set"]
    text = helm(
        "template", "credop", str(REPO / "charts" / "credop"), "-n", "credop-system", *[f"--set={v}" for v in values]
    ).stdout
    images = {
        container["image"]
        for document in yaml.safe_load_all(text)
        if document and document["kind"] == "Deployment"
        for container in document["spec"]["template"]["spec"]["containers"]
    }
    assert images == {"registry.example.com/platform/credop:0.1.0"}


def test_the_image_is_built_from_the_dockerfile_the_readme_names() -> None:
    builds = [line for line in install_block() if line.startswith(("buildah bud", "docker build"))]
    assert builds and all(line.rstrip().endswith(" .") for line in builds), "built from the checkout's Dockerfile"
    assert (REPO / "Dockerfile").exists()
