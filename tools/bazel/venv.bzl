"""The project's virtual environment as Bazel's Python toolchain.

`venv_python(name = "venv_python")` in WORKSPACE makes `@venv_python//:all`
a Python 3 toolchain whose interpreter is `<workspace>/.venv/bin/python`, so
tests and binaries see exactly the packages `make setup` installed and Bazel
fetches nothing. The path is absolute (the checkout can live anywhere) and is
the venv's own `bin/python`: started from there, Python finds the venv's
site-packages.
"""

_BUILD = """\
load("@bazel_tools//tools/python:toolchain.bzl", "py_runtime_pair")

py_runtime(
    name = "python3",
    interpreter_path = "{python}",
    python_version = "PY3",
    stub_shebang = "#!{python}",
)

py_runtime_pair(
    name = "runtime_pair",
    py3_runtime = ":python3",
)

toolchain(
    name = "toolchain",
    toolchain = ":runtime_pair",
    toolchain_type = "@bazel_tools//tools/python:toolchain_type",
)
"""

def _venv_python_impl(repository_ctx):
    root = repository_ctx.path(Label("@//:WORKSPACE")).dirname
    python = "%s/.venv/bin/python" % root
    if not repository_ctx.path(python).exists:
        fail("%s is missing: run `make setup` first." % python)
    repository_ctx.file("WORKSPACE", "")
    repository_ctx.file("BUILD", _BUILD.format(python = python))

venv_python = repository_rule(
    implementation = _venv_python_impl,
    # Looked at again after a Bazel server restart; a failure is not kept,
    # so a venv made after it is found.
    local = True,
)
