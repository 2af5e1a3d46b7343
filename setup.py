"""Package list for setuptools (everything else is in pyproject.toml).

Why this file exists: the built-in recipes live in the repository's top-level ``recipes/`` (where
people look for them) and must also be installed, as the package ``netdoctor.builtin_recipes``
(pyproject.toml maps it to that folder and ships its ``*.toml``). pyproject.toml's
``packages.find`` only finds folders under ``netdoctor/``, so the list is built here.
"""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["netdoctor", "netdoctor.*"]), "netdoctor.builtin_recipes"])
