"""`console_script`: a py_binary for a `[project.scripts]` entry point."""

_MAIN = '''"""`{name}` (pyproject.toml's [project.scripts]), for `bazel run`."""

import os
import sys

from {module} import {function}

if __name__ == "__main__":
  # `bazel run` starts in the runfiles tree; paths mean the caller's folder.
  os.chdir(os.environ.get("BUILD_WORKING_DIRECTORY", os.curdir))
  sys.argv[0] = "{name}"
  sys.exit({function}())
'''

def _script_main_impl(ctx):
    module, function = ctx.attr.function.split(":")
    ctx.actions.write(ctx.outputs.out, _MAIN.format(
        name = ctx.attr.script,
        module = module,
        function = function,
    ))

_script_main = rule(
    implementation = _script_main_impl,
    attrs = {
        "function": attr.string(mandatory = True),
        "out": attr.output(mandatory = True),
        "script": attr.string(mandatory = True),
    },
)

def console_script(name, function, deps, **kwargs):
    """A py_binary `name` that runs `function` like pip's console script.

    Args:
      name: the script's name, as in pyproject.toml (e.g. "tfvae-train").
      function: "module:function", as in pyproject.toml.
      deps: the libraries that provide `module`.
      **kwargs: further py_binary attributes.
    """
    main = name + "_main.py"
    _script_main(name = name + "_main", function = function, out = main,
                 script = name)
    native.py_binary(
        name = name,
        srcs = [main],
        main = main,
        deps = deps,
        python_version = "PY3",
        **kwargs
    )
