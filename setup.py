"""Build hook only (metadata lives in pyproject.toml): copy the device profiles, whose home in the
repository is the top-level `profiles/`, into the built package as `hwbench/profiles_data/`, so a
regular (non-editable) wheel carries them. `hwbench.profiles.profiles_dir()` looks there first."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildPyWithProfiles(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads profiles/ in the checkout
            return
        dest = Path(self.build_lib) / "hwbench" / "profiles_data"
        dest.mkdir(parents=True, exist_ok=True)
        for src in sorted((HERE / "profiles").glob("*.toml")):
            shutil.copyfile(src, dest / src.name)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        names = sorted(p.name for p in (HERE / "profiles").glob("*.toml"))
        extra = [str(Path(self.build_lib) / "hwbench" / "profiles_data" / n) for n in names]
        return [*super().get_outputs(include_bytecode), *([] if self.editable_mode else extra)]


setup(cmdclass={"build_py": BuildPyWithProfiles})
