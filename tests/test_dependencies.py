"""Every third-party module that `lightning_video/` (and `experiments/`) imports is a distribution `pyproject.toml`
declares (required or in an extra), so `pip install .` brings what the code imports; and `requirements.txt` pins
every declared one."""
from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "lightning_video"
REQUIREMENT_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def normalised(name: str) -> str:
    """A distribution's name as PEP 503 compares them (`PyYAML` is `pyyaml`, `lightning_utilities` is
    `lightning-utilities`)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return normalised(REQUIREMENT_NAME.match(requirement).group(1))


def third_party_imports(package: Path) -> dict[str, set[str]]:
    """Each top-level module the package's files import (lazy imports inside functions included) -> the files that
    import it; the standard library and the package itself left out."""
    imports: dict[str, set[str]] = {}
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:  # relative imports are first-party
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.partition(".")[0]
                if top not in sys.stdlib_module_names and top != package.name:
                    imports.setdefault(top, set()).add(str(path.relative_to(package.parent)))
    return imports


def declared(pyproject: dict) -> set[str]:
    """The normalised names of the required dependencies and of every extra's."""
    project = pyproject["project"]
    requirements = [*project["dependencies"], *(item for extra in project.get("optional-dependencies", {}).values()
                                                 for item in extra)]
    return {requirement_name(requirement) for requirement in requirements}


def undeclared(imports: dict[str, set[str]], declared_names: set[str]) -> dict[str, str]:
    """Each imported module none of whose distributions is declared -> what to declare and where it is imported."""
    distributions = importlib.metadata.packages_distributions()
    missing = {}
    for module, files in sorted(imports.items()):
        providers = {normalised(name) for name in distributions.get(module, [])}
        if not providers & declared_names:
            wanted = " or ".join(sorted(providers)) or "its distribution (not installed here)"
            missing[module] = f"declare {wanted} in pyproject.toml; imported by {', '.join(sorted(files))}"
    return missing


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_third_party_import_of_the_package_is_a_declared_dependency():
    imports = third_party_imports(ROOT / PACKAGE)
    assert {"torch", "safetensors", "transformers"} <= imports.keys()  # the parse finds top-level and lazy imports
    assert undeclared(imports, declared(pyproject())) == {}


def test_a_dependency_left_out_of_pyproject_is_named_with_the_file_that_imports_it():
    project = pyproject()
    project["project"]["dependencies"] = [requirement for requirement in project["project"]["dependencies"]
                                          if requirement_name(requirement) != "safetensors"]
    missing = undeclared(third_party_imports(ROOT / PACKAGE), declared(project))
    assert list(missing) == ["safetensors"]
    assert missing["safetensors"].startswith("declare safetensors in pyproject.toml; imported by lightning_video/")


def test_requirements_pin_every_declared_dependency():
    lines = [line for line in (ROOT / "requirements.txt").read_text().splitlines() if line and not line.startswith("#")]
    assert [line for line in lines if "==" not in line] == []  # exact pins: the set the tests ran with
    assert declared(pyproject()) - {"lightning-video"} - {requirement_name(line) for line in lines} == set()


# Imported by experiments/ only where installed, each inside `try: ... except ImportError`, which says what is skipped.
OPTIONAL_IN_EXPERIMENTS = {"decord": "bench/data.py measures PyTorchVideo's decord decoder where installed",
                           "pynvml": "bench/utilisation.py samples GPU use where NVML is installed",
                           "torchcodec": "bench/data.py compares torchcodec's decoder where it runs (it needs FFmpeg's "
                                         "shared libraries)"}


def test_every_third_party_import_of_the_experiments_is_declared_or_a_known_optional_one():
    imports = third_party_imports(ROOT / "experiments")
    assert {"matplotlib", "pytorchvideo"} <= imports.keys()  # the plots; the data benchmark's reference
    missing = undeclared({module: files for module, files in imports.items() if module != PACKAGE},
                         declared(pyproject()))
    assert missing.keys() == OPTIONAL_IN_EXPERIMENTS.keys(), missing
