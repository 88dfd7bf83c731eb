"""Package discovery for the two import roots; all metadata lives in pyproject.toml.

`gnuradio/__init__.py` calls `pkgutil.extend_path`, so `gnuradio.semcom` installed into the venv is found
beside Debian's GNU Radio in /usr/lib/python3/dist-packages. The wheel also carries the GRC files as
package data, so a non-editable install finds them without the checkout (semcom.flowgraphs looks in the
checkout first, then here): `semcom/grc_flowgraphs/*.grc` and `semcom/grc_blocks/*.block.yml`.
"""

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py


class BuildPyWithoutQA(build_py):
    """The gr_unittest QA files stay in the source tree (pytest and ctest run them there)."""

    def find_package_modules(self, package, package_dir):
        modules = super().find_package_modules(package, package_dir)
        return [m for m in modules if not m[1].startswith("qa_")]


setup(
    packages=find_packages("host", include=["semcom", "semcom.*"])
    + ["gnuradio.semcom", "semcom.grc_flowgraphs", "semcom.grc_blocks"],
    package_dir={"": "host", "gnuradio.semcom": "gr-semcom/python/semcom",
                 "semcom.grc_flowgraphs": "flowgraphs", "semcom.grc_blocks": "gr-semcom/grc"},
    # The small trained checkpoints ship with the package (the demo and `semcom send` need no training).
    package_data={"semcom.grc_flowgraphs": ["*.grc"], "semcom.grc_blocks": ["*.block.yml"],
                  "semcom.jscc": ["checkpoints/*"], "semcom.agents": ["checkpoints/*"]},
    cmdclass={"build_py": BuildPyWithoutQA},
    # pip builds in the source tree: keep setuptools' files in their own folder, apart from the CMake
    # build tree that scripts/test.sh makes in build/ (both ignored by git).
    options={"build": {"build_base": "build/python-wheel"}},
)
