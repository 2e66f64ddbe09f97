"""The ``Examples`` of every public function and class docstring run as doctests.

"Public" is what users reach: ``fastconv.__all__`` (functions, layer classes and their public
methods) and ``fastconv.shapes.__all__`` (and ``shapes.presets``). Each docstring must have a
numpydoc ``Examples`` section, and it must run and print what it says.

The doctests see the defining module's namespace plus ``np`` and ``fastconv``, with
``ELLIPSIS`` and ``NORMALIZE_WHITESPACE``. Also run: the examples of the internal modules behind
``fastconv bench`` (their docstrings are documentation for contributors).
"""

import doctest
import glob
import importlib
import inspect
import os

import numpy as np
import pytest

import fastconv

#: Internal modules whose examples are kept runnable too (the ``fastconv bench`` machinery).
INTERNAL_MODULES = ("fastconv._suite", "fastconv._timing", "fastconv._bench_reference",
                    "fastconv._bench_peers", "fastconv._bench_report", "fastconv._measure",
                    "fastconv._peak")

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _methods(cls) -> list[tuple[str, object]]:
    """Public methods of ``cls`` defined by fastconv (not by ``object`` or dataclasses)."""
    out = []
    for klass in cls.__mro__:
        if not klass.__module__.startswith("fastconv"):
            continue
        for name, value in vars(klass).items():
            if name.startswith("_") or not inspect.isfunction(value):
                continue
            if name not in {n for n, _ in out}:
                out.append((name, value))
    return out


def _public() -> list[tuple[str, object]]:
    """(qualified name, object) of every public function, class and method, deduplicated."""
    import fastconv.shapes as shapes
    import fastconv.shapes.presets as presets

    roots = [("fastconv", fastconv, fastconv.__all__),
             ("fastconv.shapes", shapes, shapes.__all__),
             ("fastconv.shapes.presets", presets,
              [n for n in getattr(presets, "__all__", dir(presets)) if not n.startswith("_")])]
    items, seen = [], set()
    for prefix, module, names in roots:
        for name in names:
            obj = getattr(module, name)
            if inspect.ismodule(obj) or not callable(obj):
                continue
            if getattr(obj, "__module__", "").split(".")[0] != "fastconv":
                continue  # re-exported from elsewhere (e.g. typing helpers)
            candidates = [(f"{prefix}.{name}", obj)]
            if inspect.isclass(obj):
                candidates += [(f"{prefix}.{name}.{m}", f) for m, f in _methods(obj)]
            for qualified, target in candidates:
                key = id(inspect.unwrap(target))
                if key not in seen:
                    seen.add(key)
                    items.append((qualified, target))
    return items


PUBLIC = _public()


def _run(name: str, obj: object, module_name: str) -> None:
    globs = dict(vars(importlib.import_module(module_name)))
    globs.update(np=np, fastconv=fastconv)
    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report: list[str] = []
    for test in finder.find(obj, name, globs=globs):
        runner.run(test, out=report.append)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{name}: {results.failed} failing example(s)\n" + "".join(report)


@pytest.mark.parametrize("name, obj", PUBLIC, ids=[name for name, _ in PUBLIC])
def test_public_docstring_example_runs(name, obj):
    doc = inspect.getdoc(obj) or ""
    has_examples = "Examples\n--------" in doc and ">>>" in doc.split("Examples\n--------")[1]
    if not has_examples:
        pytest.fail(f"{name} has no numpydoc 'Examples' section with a runnable example")
    _run(name, obj, obj.__module__)


@pytest.mark.parametrize("module_name", INTERNAL_MODULES)
def test_internal_module_examples_run(module_name):
    module = importlib.import_module(module_name)
    globs = dict(vars(module))
    globs.update(np=np, fastconv=fastconv)
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report: list[str] = []
    tests = [t for t in finder.find(module, module_name, globs=globs)
             if t.examples and t.name.startswith(module_name)]
    assert tests, f"{module_name} has no examples"
    for test in tests:
        runner.run(test, out=report.append)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, "".join(report)


DOCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "docs")
DOC_PAGES = sorted(glob.glob(os.path.join(DOCS, "*.md")))


@pytest.mark.skipif(not DOC_PAGES, reason="no docs/ next to the tests (installed tests only)")
@pytest.mark.parametrize("page", DOC_PAGES, ids=os.path.basename)
def test_docs_examples_run(page):
    """The ``>>>`` examples of the documentation pages (docs/*.md) run as written."""
    results = doctest.testfile(page, module_relative=False, optionflags=FLAGS,
                               globs={"np": np, "fastconv": fastconv}, verbose=False,
                               report=True)
    assert results.failed == 0, f"{results.failed} failing example(s) in {page}"


def test_the_collection_covers_the_api():
    names = {name for name, _ in PUBLIC}
    for expected in ("fastconv.conv2d", "fastconv.Conv2d", "fastconv.conv_transpose3d",
                     "fastconv.max_pool2d", "fastconv.AdaptiveAvgPool2d",
                     "fastconv.shapes.resolve_padding", "fastconv.shapes.summary",
                     "fastconv.shapes.presets.resnet18"):
        assert expected in names


# --- issue 21 item 10: rough edges of the public documentation ------------------------------

def test_conv_docstrings_describe_the_winograd_algorithms():
    for function in (fastconv.conv1d, fastconv.conv2d, fastconv.conv3d):
        doc = function.__doc__
        assert "not in this build" not in doc
        assert "winograd_f6" in doc and "3x3" in doc and "stride 1" in doc


@pytest.mark.parametrize("cls", [fastconv.ConvTranspose1d, fastconv.ConvTranspose2d,
                                 fastconv.ConvTranspose3d])
def test_conv_transpose_layer_attributes_and_call_are_documented(cls):
    for name, value in vars(cls.__mro__[1]).items():
        if isinstance(value, property):
            assert value.__doc__ and value.__doc__.strip(), f"{cls.__name__}.{name}"
    call = inspect.getdoc(cls.__call__)
    assert "Examples\n--------" in call and ">>>" in call
    _run(f"{cls.__name__}.__call__", cls.__call__, cls.__module__)


def test_dir_shows_no_helper_modules():
    assert "importlib" not in dir(fastconv)
    assert {"conv2d", "ConvTranspose2d", "shapes", "__version__"} <= set(dir(fastconv))


def test_user_docs_name_the_transposed_algorithms():
    with open(os.path.join(DOCS, "quickstart.md"), encoding="utf-8") as f:
        text = f.read()
    assert '`"gemm"`' in text and '`"phase"`' in text
    doc = fastconv.conv_transpose2d.__doc__
    assert '"gemm"' in doc and '"phase"' in doc and "col2im" in doc
