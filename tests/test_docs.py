"""The README and docs/*.md tell the truth about the repository: every path they name exists, every setting they
name is one, every version they name is the package's; every setting is listed in docs/configuration.md, spelled
out in full; the README stays a user's guide (at most 300 lines)."""

import re
import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest

from core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Where a path the docs name can start: the repository's own top-level entries (runtime folders such as data/
# are the user's, not the repository's).
TOP_LEVEL = {path.name for path in ROOT.iterdir() if not path.name.startswith(".")} - {"data"}
PATH = re.compile(r"(?<![\w./-])((?:\.\./shared/)?[\w.-]+(?:/[\w.-]+)*/?)")
SETTING = re.compile(r"\bFACEGATE_[A-Z0-9_]*[A-Z0-9]\b")
VERSION = re.compile(r"\bfacegate[ :=@-]v?(\d+\.\d+\.\d+)\b", re.IGNORECASE)


def _named(doc: Path) -> set[Path]:
    """The repository files `doc` names: link targets (relative to the doc, as Markdown reads them) and
    backquoted paths that start at a top-level entry of the repository or at ../shared."""
    text = doc.read_text()
    named = {(doc.parent / target).resolve() for target in re.findall(r"\]\(([^)\s#]+)", text) if "://" not in target}
    for span in re.findall(r"`([^`\n]+)`", text):
        for name in PATH.findall(span):
            name = name.rstrip(".")
            if name.startswith("../shared/") or name.split("/")[0] in TOP_LEVEL:
                named.add(ROOT / name)
    return named


def _ignored(path: Path) -> bool:
    """Written by the project and kept out of git (a study's cache, its results): named, but not committed."""
    return any(
        subprocess.run(["git", "check-ignore", "-q", name], cwd=ROOT).returncode == 0
        for name in (str(path), f"{path}/")
    )


def _exists(path: Path) -> bool:
    """The file or folder, or `module.name` for a name defined in a module (`api/deps.get_db`)."""
    if path.exists():
        return True
    stem, _, attribute = path.name.partition(".")
    module = path.with_name(f"{stem}.py")
    return (
        bool(attribute)
        and module.is_file()
        and re.search(
            rf"^\s*(?:def|class|async def)\s+{re.escape(attribute)}\b|^{re.escape(attribute)}\b",
            module.read_text(),
            re.M,
        )
        is not None
    )


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_path_named_exists(doc):
    shared = ROOT.parent / "shared"
    missing = [
        str(path)
        for path in sorted(_named(doc))
        if not _exists(path) and not _ignored(path) and (shared.is_dir() or shared not in path.parents)
    ]
    assert not missing, f"{doc.name} names paths that do not exist: {missing}"


def _setting_names() -> set[str]:
    names = {f"FACEGATE_{name.upper()}" for name in Settings.model_fields}
    for field in Settings.model_fields.values():
        names |= {str(alias) for alias in getattr(field.validation_alias, "choices", [])}
    return names


def _code_text() -> str:
    files = [*ROOT.glob("*.py"), ROOT / "Makefile", ROOT / "Dockerfile"]
    for folder in ("api", "core", "db", "services", "facegate_client", "bench", "deploy", "tests"):
        files += [
            p
            for p in (ROOT / folder).rglob("*")
            if p.suffix in {".py", ".yaml", ".sh"} and not any(part.startswith(".venv") for part in p.parts)
        ]  # not bench/.venv-peer's packages
    return "\n".join(p.read_text() for p in files if p.is_file())


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_setting_named_is_one(doc):
    """A FACEGATE_ name is a setting (core/settings.py), or a variable the code reads (FACEGATE_API_KEY); never
    a `_SUFFIX` shorthand for one."""
    settings, code = _setting_names(), _code_text()
    text = doc.read_text()
    unknown = sorted({name for name in SETTING.findall(text) if name not in settings and name not in code})
    assert not unknown, f"{doc.name} names settings that do not exist: {unknown}"
    shorthand = sorted(set(re.findall(r"`(_[A-Z][A-Z0-9_]+)`", text)))
    assert not shorthand, f"{doc.name} abbreviates settings, spell them out: {shorthand}"


def test_every_setting_is_in_the_configuration_page():
    page = (ROOT / "docs" / "configuration.md").read_text()
    missing = sorted(name for name in _setting_names() if f"`{name}`" not in page)
    assert not missing, f"docs/configuration.md lacks {missing}"


def test_every_version_named_is_the_packages():
    texts = {p: p.read_text() for p in [*DOCS, *(ROOT / "deploy").rglob("*.yaml"), ROOT / "deploy" / "README.md"]}
    wrong = {
        str(p.relative_to(ROOT)): v
        for p, text in texts.items()
        for v in VERSION.findall(text)
        if v != version("facegate")
    }
    assert not wrong, f"versions other than the package's {version('facegate')}: {wrong}"


def test_the_api_reports_the_packages_version():
    from api.main import app

    assert app.version == version("facegate")


def test_the_readme_is_a_guide_not_a_notebook():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines; measurements and history go to docs/"
