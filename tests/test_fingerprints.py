"""Content fingerprints: the records a task read, source code, and the file-hash memo."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from coca_bench import fileio
from coca_bench.fingerprints import records_fingerprint, source_fingerprint


def _dataset(root: Path) -> Path:
    for wnid, payload in (("n01440764", b"\x01" * 100), ("n01443537", b"\x02" * 100)):
        (root / "val" / wnid).mkdir(parents=True)
        (root / "val" / wnid / "img.JPEG").write_bytes(payload)
    (root / "LOC_synset_mapping.txt").write_text("n01440764 tench\nn01443537 goldfish\n")
    return root


def _fingerprint(root: Path, data_root: Path | None = None) -> str:
    from coca_bench.data.imagenet import read_imagenet

    return records_fingerprint([read_imagenet(root, "val")], data_root or root.parent).sha256


def test_a_same_size_edit_changes_the_fingerprint(tmp_path: Path) -> None:
    """An image re-encoded to the same number of bytes used to keep its path+size fingerprint."""
    root = _dataset(tmp_path / "imagenet")
    before = _fingerprint(root)
    image = root / "val" / "n01440764" / "img.JPEG"
    image.write_bytes(b"\x03" * 100)
    assert _fingerprint(root) != before


def test_the_fingerprint_follows_the_records_not_the_folders(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "data" / "imagenet")
    base = _fingerprint(root)
    copy = shutil.copytree(tmp_path / "data", tmp_path / "elsewhere")
    assert _fingerprint(copy / "imagenet") == base  # moving the data root keeps it
    (root / "val" / "notes.txt").write_text("not an image")  # no reader names it
    (root / "README").write_text("...")
    assert _fingerprint(root) == base
    shutil.move(root / "val" / "n01440764" / "img.JPEG", root / "val" / "n01443537" / "img2.JPEG")  # relabelled
    assert _fingerprint(root) != base
    (root / "LOC_synset_mapping.txt").write_text("n01440764 tench fish\nn01443537 goldfish\n")  # class list edit
    relabelled = _fingerprint(root)
    (root / "LOC_synset_mapping.txt").write_text("n01440764 tench\nn01443537 goldfish\n")
    assert _fingerprint(root) != relabelled


def test_hidden_files_are_neither_read_nor_fingerprinted(tmp_path: Path) -> None:
    """macOS AppleDouble files (``._x.JPEG``) and other dot-files are not data: readers skip them, and the
    fingerprint, which covers what the records name, follows."""
    from coca_bench.data.imagenet import read_imagenet

    root = _dataset(tmp_path / "imagenet")
    base = _fingerprint(root)
    (root / "val" / "n01440764" / "._img.JPEG").write_bytes(b"\x00\x05\x16\x07")
    (root / "val" / "n01440764" / ".extra.JPEG").write_bytes(b"\x04" * 100)
    (root / "val" / ".hidden_class").mkdir()
    assert [s.path.name for s in read_imagenet(root, "val").items] == ["img.JPEG", "img.JPEG"]
    assert _fingerprint(root) == base


def test_a_missing_media_file_is_part_of_the_fingerprint(tmp_path: Path) -> None:
    from coca_bench.data.records import ClassificationSample, RecordSet

    def fingerprint(name: str) -> str:
        item = ClassificationSample(id="x", path=tmp_path / name, label=0)
        return records_fingerprint([RecordSet(items=(item,), split="val", annotation_files=())], tmp_path).sha256

    absent = fingerprint("a.jpg")
    assert absent != fingerprint("b.jpg")
    (tmp_path / "a.jpg").write_bytes(b"now here")
    assert fingerprint("a.jpg") != absent


def test_file_hashes_are_remembered_by_their_stat(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("COCA_BENCH_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "big.bin"
    path.write_bytes(b"a" * 1000)
    reads: list[Path] = []
    original = fileio._hash_file_bytes
    monkeypatch.setattr(fileio, "_hash_file_bytes", lambda p: reads.append(p) or original(p))
    first = fileio.sha256_file(path)
    assert fileio.sha256_file(path) == first and len(reads) == 1  # the second call only stats the file
    path.write_bytes(b"b" * 1000)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    assert fileio.sha256_file(path) != first and len(reads) == 2


def test_an_in_place_edit_with_its_mtime_restored_is_hashed_again(tmp_path: Path, monkeypatch) -> None:
    """Size, mtime and inode can all be put back after an in-place edit; the inode change time cannot."""
    monkeypatch.setenv("COCA_BENCH_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "weights.bin"
    path.write_bytes(b"a" * 1000)
    first = fileio.sha256_file(path)
    before = path.stat()
    with open(path, "r+b") as handle:  # flip bits in place: same inode, same size
        handle.write(b"b")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)
    assert fileio.sha256_file(path) != first


def test_after_hash_every_file_afresh_no_stored_hash_is_trusted(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("COCA_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(fileio, "_MEMO", fileio._HashMemo())
    path = tmp_path / "weights.bin"
    path.write_bytes(b"a" * 1000)
    first = fileio.sha256_file(path)
    stored = fileio._MEMO._db()
    stored.execute("UPDATE hashes_v2 SET sha256 = 'poisoned'")  # a row the file's bytes do not back
    stored.commit()
    assert fileio.sha256_file(path) == "poisoned"  # the memo is trusted by default: that is its purpose
    reads: list[Path] = []
    original = fileio._hash_file_bytes
    monkeypatch.setattr(fileio, "_hash_file_bytes", lambda p: reads.append(p) or original(p))
    fileio.hash_every_file_afresh()
    assert fileio.sha256_file(path) == first and fileio.sha256_file(path) == first
    assert len(reads) == 1  # read once in this process, then remembered for the rest of it


def test_source_fingerprint_changes_with_any_source_edit(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "b.py").write_text("y = 2\n")
    files = [tmp_path / "a.py", tmp_path / "b.py"]
    before = source_fingerprint(files, tmp_path)
    (tmp_path / "b.py").write_text("y = 3\n")
    assert source_fingerprint(files, tmp_path) != before


def test_a_plugins_own_helper_modules_are_part_of_its_code_key(tmp_path: Path) -> None:
    """A plugin imports helpers from its folder (``from ._common import x``, ``import _other``, a sub-package);
    editing one must change the key of the plugin's results, as editing the plugin does."""
    from coca_bench.fingerprints import code_closure

    plugins = tmp_path / "plugins"
    (plugins / "_shared").mkdir(parents=True)
    (plugins / "_shared" / "__init__.py").write_text("")
    (plugins / "_shared" / "deep.py").write_text("DEPTH = 3\n")
    (plugins / "_common.py").write_text("from ._shared.deep import DEPTH\nSCALE = 2 * DEPTH\n")
    (plugins / "_other.py").write_text("OFFSET = 1\n")
    (plugins / "_unused.py").write_text("NOTHING = 0\n")
    (plugins / "_deep.py").write_text("from " + "." * 64 + "nowhere import x\n")  # above the root: no crash
    task = plugins / "my_task.py"
    task.write_text(
        "import numpy\nimport _other\nimport _deep\nfrom . import _common\nfrom coca_bench.registry import TaskResult\n\n"
        "def run():\n    return _common.SCALE + _other.OFFSET\n"
    )
    closure = code_closure([task])
    names = sorted(p.relative_to(plugins).as_posix() for p in closure if p.is_relative_to(plugins))
    assert names == ["_common.py", "_deep.py", "_other.py", "_shared/__init__.py", "_shared/deep.py", "my_task.py"]
    assert any(p.name == "registry.py" for p in closure)  # and the package modules, as before
    before = source_fingerprint(closure)
    (plugins / "_shared" / "deep.py").write_text("DEPTH = 4\n")
    assert source_fingerprint(code_closure([task])) != before
    (plugins / "_shared" / "deep.py").write_text("DEPTH = 3  # a comment changes no number\n")
    assert source_fingerprint(code_closure([task])) == before


def test_an_installed_plugin_package_importing_itself_absolutely_is_part_of_its_code_key(tmp_path: Path) -> None:
    """An entry-point plugin lives in a package of its own and imports its helpers as ``mypkg.helpers``."""
    from coca_bench.fingerprints import code_closure

    package = tmp_path / "site-packages" / "mypkg"
    (package / "tasks").mkdir(parents=True)
    for relative, text in {"__init__.py": "", "helpers.py": "SCALE = 2\n", "util.py": "from mypkg.helpers import SCALE\n",
                           "tasks/__init__.py": "", "other.py": "UNUSED = 1\n"}.items():  # fmt: skip
        (package / relative).write_text(text)
    task = package / "tasks" / "zeroshot.py"
    task.write_text("import mypkg.util\nfrom mypkg import helpers\nimport numpy\n")
    closure = {p.relative_to(package).as_posix() for p in code_closure([task]) if p.is_relative_to(package)}
    assert closure == {"__init__.py", "helpers.py", "util.py", "tasks/__init__.py", "tasks/zeroshot.py"}
    before = source_fingerprint(code_closure([task]))
    (package / "helpers.py").write_text("SCALE = 3\n")
    assert source_fingerprint(code_closure([task])) != before


@pytest.fixture()
def package_copy(tmp_path: Path, monkeypatch) -> Path:
    """A copy of the package and the built-in tasks that the fingerprints read instead of the real ones."""
    from coca_bench import fingerprints

    root = tmp_path / "src"
    shutil.copytree(fingerprints.PACKAGE_ROOT, root / "coca_bench", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(fingerprints.PACKAGE_ROOT.parent / "tasks", root / "tasks")
    monkeypatch.setattr(fingerprints, "PACKAGE_ROOT", root / "coca_bench")
    return root


def _code_fingerprints(root: Path) -> tuple[str, str]:
    from coca_bench import fingerprints

    for function in (fingerprints.suite_code_fingerprint, fingerprints.feature_code_fingerprint):
        getattr(function, "cache_clear", lambda: None)()
    task = str(root / "tasks" / "imagenet_zeroshot.py")
    return fingerprints.suite_code_fingerprint(task), fingerprints.feature_code_fingerprint()


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} is no longer in {path}; update this test"
    path.write_text(text.replace(old, new, 1))


def test_a_docstring_or_comment_edit_in_the_feature_code_keeps_every_key(package_copy: Path) -> None:
    before = _code_fingerprints(package_copy)
    features = package_copy / "coca_bench" / "features"
    _edit(features / "__init__.py", "Batched encoding of images", "Batched encoding (edited) of images")
    _edit(features / "base.py", "\nimport ", "\n# a comment\n\n\nimport ")
    _edit(features / "base.py", "What every feature kind shares", "What (edited) every feature kind shares")
    assert _code_fingerprints(package_copy) == before


def test_a_report_style_edit_keeps_every_result_key(package_copy: Path) -> None:
    before = _code_fingerprints(package_copy)
    _edit(package_copy / "coca_bench" / "report" / "build.py", 'CSS = """', 'CSS = """\nbody { margin: 3px; }')
    assert _code_fingerprints(package_copy) == before


def test_an_edit_to_a_model_forward_changes_the_result_and_feature_keys(package_copy: Path) -> None:
    before = _code_fingerprints(package_copy)
    _edit(
        package_copy / "coca_bench" / "model" / "coca.py",
        "    def encode_image(self, pixels: torch.Tensor, normalize: bool = True) -> torch.Tensor:\n",
        "    def encode_image(self, pixels: torch.Tensor, normalize: bool = True) -> torch.Tensor:\n"
        "        pixels = pixels * 1.0001\n",
    )
    after = _code_fingerprints(package_copy)
    assert after[0] != before[0] and after[1] != before[1]
