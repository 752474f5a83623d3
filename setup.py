"""Package layout: each top-level folder installs as a subpackage of one import package, `yaguar`.

pyproject.toml holds the metadata; this file only computes the folder -> package mapping, which
setuptools cannot express declaratively for nested subpackages.
"""

from setuptools import find_packages, setup

FOLDERS = {
    "yaguar": "core",
    "yaguar.agent": "agent",
    "yaguar.protocol": "protocol",
    "yaguar.server": "server",
    "yaguar.engine": "engine",
    "yaguar.kernels": "kernels",
    "yaguar.alerts": "alerts",
}

packages: list[str] = []
for name, folder in FOLDERS.items():
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_packages(folder)]

setup(packages=packages, package_dir=FOLDERS)
