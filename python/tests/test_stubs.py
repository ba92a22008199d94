"""The shipped type stubs cover the Python-level Tensor methods and the submodules.

The stubs are generated at build time by nanobind's stubgen; the Tensor methods that
tmath/__init__.py adds in Python come from python/stubs/tensor_methods.nbpat. These
tests fail when a method is added in Python without a stub entry, or when an entry's
parameters drift from the function the method wraps.
"""

import ast
import inspect
import pathlib

import pytest

import tmath as tm

PKG = pathlib.Path(tm.__file__).parent
STUB_PKG = PKG / "_tmath" / "__init__.pyi"
STUB_ONE = PKG / "_tmath.pyi"
STUB = STUB_PKG if STUB_PKG.exists() else STUB_ONE

pytestmark = pytest.mark.skipif(not STUB.exists(), reason="no generated stubs next to the package")


def _tree(path):
    return ast.parse(path.read_text(encoding="utf-8"))


def _defs(body):
    return {n.name: n for n in body if isinstance(n, ast.FunctionDef)}


def _tensor_class(tree):
    for n in tree.body:
        if isinstance(n, ast.ClassDef) and n.name == "Tensor":
            return n
    raise AssertionError("class Tensor not in the stub")


def _python_methods():
    """Tensor attributes that are plain Python functions (added by __init__.py)."""
    out = {}
    for name, v in vars(tm.Tensor).items():
        if inspect.isfunction(v):
            out[name] = v
    return out


def _param_names(fn_def):
    a = fn_def.args
    names = [p.arg for p in a.posonlyargs + a.args]
    if a.vararg:
        names.append("*" + a.vararg.arg)
    names += [p.arg for p in a.kwonlyargs]
    return names


def test_every_python_method_has_a_stub_entry():
    methods = _python_methods()
    assert len(methods) >= 30  # the loop in __init__.py alone adds 33
    stub_methods = _defs(_tensor_class(_tree(STUB)).body)
    missing = sorted(set(methods) - set(stub_methods))
    assert not missing, f"Tensor methods without a stub entry: {missing}"


def test_method_entries_match_the_functions_they_wrap():
    tree = _tree(STUB)
    funcs = _defs(tree.body)
    stub_methods = _defs(_tensor_class(tree).body)
    checked = 0
    for name, m in _python_methods().items():
        fn = getattr(tm, name, None)
        # Wrappers made by _method(fn): the method is fn with x bound to self.
        if fn is None or getattr(m, "__name__", "") != name or m.__doc__ != fn.__doc__:
            continue
        want = _param_names(funcs[name])[1:] if name in funcs else None
        if inspect.isfunction(fn):  # defined in Python: its own signature is the truth
            want = [("*" + p.name if p.kind is p.VAR_POSITIONAL else p.name)
                    for p in inspect.signature(fn).parameters.values()][1:]
        if want is None:
            continue
        got = _param_names(stub_methods[name])
        assert got[0] == "self", name
        assert got[1:] == want, f"{name}: stub {got[1:]} vs function {want}"
        checked += 1
    assert checked >= 30


def test_stub_methods_exist_at_run_time():
    # No stub entry for a method the Tensor does not have.
    stub_methods = _defs(_tensor_class(_tree(STUB)).body)
    absent = sorted(n for n in stub_methods if not hasattr(tm.Tensor, n))
    assert not absent, f"stub entries without a Tensor attribute: {absent}"


@pytest.mark.skipif(not STUB_PKG.exists(), reason="single-file stubs (nanobind < 2.9.2)")
@pytest.mark.parametrize("sub", ["random", "linalg"])
def test_submodules_are_typed(sub):
    tree = _tree(PKG / "_tmath" / f"{sub}.pyi")
    names = set(_defs(tree.body))
    public = {n for n in dir(getattr(tm, sub)) if not n.startswith("_")
              and callable(getattr(getattr(tm, sub), n))
              and not inspect.isclass(getattr(getattr(tm, sub), n))}
    missing = sorted(public - names)
    assert not missing, f"tmath.{sub} functions without a stub: {missing}"
