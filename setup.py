"""Package discovery for the two import roots; all metadata lives in pyproject.toml.

`gnuradio/__init__.py` calls `pkgutil.extend_path`, so `gnuradio.semcom` installed into the venv is found
beside Debian's GNU Radio in /usr/lib/python3/dist-packages.
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages("host", include=["semcom", "semcom.*"]) + ["gnuradio.semcom"],
    package_dir={"": "host", "gnuradio.semcom": "gr-semcom/python/semcom"},
    # The small trained checkpoints ship with the package (the demo and `semcom send` need no training).
    package_data={"gnuradio.semcom": ["*.block.yml"], "semcom.jscc": ["checkpoints/*"],
                  "semcom.agents": ["checkpoints/*"]},
)
