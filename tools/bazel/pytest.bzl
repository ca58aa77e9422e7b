"""`pytest_tests`: one Bazel py_test per pytest file."""

def pytest_tests(srcs, deps = [], data = [], **kwargs):
    """Declares a py_test per file of `srcs`, run by pytest.

    The test of `tests/data/arrays_test.py` is `//tests:data/arrays_test`.
    Each runs `//tools/bazel:pytest_main.py` on its file, so pytest's
    fixtures, conftest.py files and pytest.ini work as under `make test`.

    Args:
      srcs: the test files, relative to the package (e.g. a glob).
      deps: what every test imports (libraries with conftest.py, helpers).
      data: files every test reads at run time.
      **kwargs: further py_test attributes (e.g. timeout), for every test.
    """
    for src in srcs:
        native.py_test(
            name = src[:-len(".py")],
            srcs = ["//tools/bazel:pytest_main.py", src],
            main = "//tools/bazel:pytest_main.py",
            args = [native.package_name() + "/" + src],
            deps = deps,
            data = data,
            python_version = "PY3",
            **kwargs
        )
